<?php
// Stand-in auth_http script for tests/real/run.py, used only when examples/auth.php does not
// exist yet. Same contract as examples/auth.php: run with `php -S 127.0.0.1:PORT THIS_FILE`,
// the backend comes from the environment (BACKEND_HOST, BACKEND_IMAP_PORT).
//
// It routes every IMAP login to the one backend and does not check passwords itself: the
// backend (the legacy server) decides, and proxy_pass_error_message relays its verdict.

$host = getenv('BACKEND_HOST') ?: '127.0.0.1';
$imap_port = getenv('BACKEND_IMAP_PORT') ?: '143';

$protocol = $_SERVER['HTTP_AUTH_PROTOCOL'] ?? '';
$user = $_SERVER['HTTP_AUTH_USER'] ?? '';

if ($protocol !== 'imap' || $user === '') {
    header('Auth-Status: Invalid login or password');
    exit;
}

header('Auth-Status: OK');
header('Auth-Server: ' . $host);
header('Auth-Port: ' . $imap_port);
