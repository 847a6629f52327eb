<?php
// The PHP front controller of tests/difftest_test.go, behind Caddy's
// php_fastcgi. It reads a request as PHP frameworks do:
// - the route path: the REQUEST_URI path with the script name cut off
//   when the URI starts with it (/index.php/admin/keys is /admin/keys),
//   percent-decoded, its outer slashes trimmed (CodeIgniter's URI class);
// - routes matched case-insensitively with Unicode rules (preg's "iu":
//   \d is any Unicode digit, "ſ" matches "s", "K" matches "k");
// - HEAD served by the GET routes (FastRoute, Slim);
// - the method as Symfony's Request::getMethod() reads it: upper-cased;
//   a POST may name another through X-HTTP-Method-Override or a _method
//   field (body, then query), never GET, HEAD, CONNECT or TRACE (Symfony 8).
// A route that runs says so: X-Route, X-Route-Method, X-Route-Path,
// X-Route-User.

$uri = parse_url('http://dummy' . $_SERVER['REQUEST_URI'], PHP_URL_PATH);
if (!is_string($uri)) {
    http_response_code(400);
    exit;
}
$script = $_SERVER['SCRIPT_NAME'];
if (strpos($uri, $script) === 0) {
    $uri = substr($uri, strlen($script));
}
$uri = '/' . trim(rawurldecode($uri), '/');

$method = strtoupper($_SERVER['REQUEST_METHOD']);
if ($method === 'POST') {
    $override = $_SERVER['HTTP_X_HTTP_METHOD_OVERRIDE'] ?? $_POST['_method'] ?? $_GET['_method'] ?? '';
    $override = is_string($override) ? strtoupper($override) : '';
    if (preg_match('/^[A-Z]+$/D', $override) && !in_array($override, ['GET', 'HEAD', 'CONNECT', 'TRACE'], true)) {
        $method = $override;
    }
}

$routes = [
    ['admin', ['GET', 'POST'], '#^/admin/keys$#iuD'],
    ['billing', ['GET', 'POST', 'PUT', 'DELETE'], '#^/billing/\d+$#iuD'],
    ['reports', ['GET'], '#^/reports/\d+$#iuD'],
    ['read', ['GET'], '#^/read/[^/]+$#iuD'],
    ['public', ['GET'], '#^/public/[^/]+$#iuD'],
];
$routeMethod = $method === 'HEAD' ? 'GET' : $method;
foreach ($routes as [$name, $methods, $pattern]) {
    if (@preg_match($pattern, $uri) !== 1) {
        continue;
    }
    if (!in_array($routeMethod, $methods, true)) {
        http_response_code(405);
        exit;
    }
    header('X-Route: ' . $name);
    header('X-Route-Method: ' . $method);
    header('X-Route-Path: ' . str_replace('%2F', '/', rawurlencode($uri)));
    header('X-Route-User: ' . ($_SERVER['HTTP_X_SESSION_USER'] ?? ''));
    echo "php ran $name\n";
    exit;
}
http_response_code(404);
echo "php: no route for $method\n";
