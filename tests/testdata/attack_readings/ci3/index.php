<?php
// A CodeIgniter 3 front controller's reading of the request, for
// tests/attack_readings_test.go: CI_URI::_parse_request_uri() as
// CodeIgniter 3.1 ships it (uri_protocol REQUEST_URI, the default),
// then its routing of "controller/method". The part that matters:
// "/index.php?/admin/keys" and "/?/admin/keys" route to admin/keys
// ("ensures that even on servers that require the URI to be in the
// query string (Nginx) a correct URI is found").
// A route that runs says so, as the differential test's readers do.

$uri = parse_url('http://dummy' . $_SERVER['REQUEST_URI']);
$query = isset($uri['query']) ? $uri['query'] : '';
$uri = isset($uri['path']) ? $uri['path'] : '';
if (isset($_SERVER['SCRIPT_NAME'][0])) {
    if (strpos($uri, $_SERVER['SCRIPT_NAME']) === 0) {
        $uri = (string) substr($uri, strlen($_SERVER['SCRIPT_NAME']));
    } elseif (strpos($uri, dirname($_SERVER['SCRIPT_NAME'])) === 0) {
        $uri = (string) substr($uri, strlen(dirname($_SERVER['SCRIPT_NAME'])));
    }
}
if (trim($uri, '/') === '' && strncmp($query, '/', 1) === 0) {
    $query = explode('?', $query, 2);
    $uri = $query[0];
}
// CI_URI::_set_uri_string: outer slashes trimmed, then segments.
$route = trim($uri, '/');

$method = strtoupper($_SERVER['REQUEST_METHOD']);
$routes = [
    'admin/keys' => 'admin',
    'read/notes' => 'read',
    'reports/12' => 'reports',
    'public/info' => 'public',
];
if (!isset($routes[$route])) {
    http_response_code(404);
    echo "ci3: no route for $route\n";
    exit;
}
header('X-Route: ' . $routes[$route]);
header('X-Route-Method: ' . $method);
header('X-Route-Path: /' . str_replace('%2F', '/', rawurlencode($route)));
header('X-Route-User: ' . ($_SERVER['HTTP_X_SESSION_USER'] ?? ''));
echo "ci3 ran {$routes[$route]}\n";
