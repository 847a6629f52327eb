<?php
// A Zend Framework 1 front controller's reading of the request, for
// tests/attack_readings_test.go: Zend_Controller_Request_Http::
// setRequestUri() (ZF 1.12, the framework under Magento 1), which takes
// the request URI from the X-Original-URL or X-Rewrite-URL header when
// there is one (IIS's URL Rewrite and ISAPI_Rewrite modules set them;
// Symfony did the same before CVE-2018-14773), then its base URL
// (the script name) cut off. A route that runs says so, as the
// differential test's readers do.

if (isset($_SERVER['HTTP_X_ORIGINAL_URL'])) {
    $requestUri = $_SERVER['HTTP_X_ORIGINAL_URL'];
} elseif (isset($_SERVER['HTTP_X_REWRITE_URL'])) {
    $requestUri = $_SERVER['HTTP_X_REWRITE_URL'];
} else {
    $requestUri = $_SERVER['REQUEST_URI'];
}
$path = parse_url('http://dummy' . $requestUri, PHP_URL_PATH);
$path = is_string($path) ? $path : '/';
$script = $_SERVER['SCRIPT_NAME'];
if (strpos($path, $script) === 0) {
    $path = substr($path, strlen($script));
}
$route = trim(rawurldecode($path), '/');

$method = strtoupper($_SERVER['REQUEST_METHOD']);
$routes = [
    'admin/keys' => 'admin',
    'read/notes' => 'read',
    'reports/12' => 'reports',
    'public/info' => 'public',
];
if (!isset($routes[$route])) {
    http_response_code(404);
    echo "zf1: no route for $route\n";
    exit;
}
header('X-Route: ' . $routes[$route]);
header('X-Route-Method: ' . $method);
header('X-Route-Path: /' . str_replace('%2F', '/', rawurlencode($route)));
header('X-Route-User: ' . ($_SERVER['HTTP_X_SESSION_USER'] ?? ''));
echo "zf1 ran {$routes[$route]}\n";
