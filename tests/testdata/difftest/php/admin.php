<?php
// A script of its own, run by php_fastcgi wherever a path names it
// (/admin.php, and /admin.php/anything through PATH_INFO).
header('X-Route: admin');
header('X-Route-Method: ' . strtoupper($_SERVER['REQUEST_METHOD']));
header('X-Route-Path: ' . str_replace('%2F', '/', rawurlencode($_SERVER['SCRIPT_NAME'])));
header('X-Route-User: ' . ($_SERVER['HTTP_X_SESSION_USER'] ?? ''));
echo "php ran admin.php\n";
