<?php
/*
 * An auth_http script in the style of nginx's documentation, for mailproxy or nginx.
 *
 *     php -S 127.0.0.1:9000 examples/auth.php
 *     # nginx.conf / mailproxy:  auth_http 127.0.0.1:9000/auth;
 *
 * Every login is sent to one backend; the backend checks the password. Environment:
 *   BACKEND_HOST       backend host or IP             (default 127.0.0.1)
 *   BACKEND_IMAP_PORT  BACKEND_POP3_PORT  BACKEND_SMTP_PORT   (143, 110, 25)
 *   REFUSE_USERS       comma-separated logins to refuse (default: none)
 *   REFUSE_WAIT        Auth-Wait seconds for a refusal (default 3)
 *   MAX_ATTEMPTS       from this Auth-Login-Attempt on, refuse without Auth-Wait,
 *                      so the proxy closes the connection (default 10)
 *
 * The proxy sends Auth-User and Auth-Pass with space, "%" and control bytes escaped
 * as %XX; rawurldecode() undoes that (urldecode() would also turn "+" into a space).
 * The response must use only headers; the body is ignored, and everything must fit
 * in 1024 bytes.
 */

function env_or($name, $default) {
    $value = getenv($name);
    return ($value === false || $value === '') ? $default : $value;
}

function answer_fail($message, $wait) {
    header("Auth-Status: $message");
    if ($wait > 0) {
        header("Auth-Wait: $wait");
    }
    exit;
}

function bad_request($message) {
    http_response_code(400);
    echo "$message\n";
    exit;
}

if (!isset($_SERVER['HTTP_AUTH_USER'], $_SERVER['HTTP_AUTH_PROTOCOL'])) {
    bad_request('missing Auth-User or Auth-Protocol header');
}

$user     = rawurldecode($_SERVER['HTTP_AUTH_USER']);
$pass     = rawurldecode($_SERVER['HTTP_AUTH_PASS'] ?? '');   // unused: the backend checks it
$protocol = $_SERVER['HTTP_AUTH_PROTOCOL'];
$attempt  = (int) ($_SERVER['HTTP_AUTH_LOGIN_ATTEMPT'] ?? 1);

$ports = [
    'imap' => (int) env_or('BACKEND_IMAP_PORT', 143),
    'pop3' => (int) env_or('BACKEND_POP3_PORT', 110),
    'smtp' => (int) env_or('BACKEND_SMTP_PORT', 25),
];
if (!isset($ports[$protocol])) {
    bad_request("unknown Auth-Protocol \"$protocol\"");
}

$wait = (int) env_or('REFUSE_WAIT', 3);
if ($attempt >= (int) env_or('MAX_ATTEMPTS', 10)) {
    $wait = 0;   // the last try: no Auth-Wait, the proxy closes after the error
}

$shown = addcslashes($user, "\0..\37\"\\");   // for the log: no control bytes

$refused = array_filter(array_map('trim', explode(',', env_or('REFUSE_USERS', ''))), 'strlen');
if (in_array($user, $refused, true)) {
    error_log("auth: refused \"$shown\" ($protocol, attempt $attempt)");
    answer_fail('Invalid login or password', $wait);
}

// nginx accepts only an IP address in Auth-Server: look a host name up here.
$host = env_or('BACKEND_HOST', '127.0.0.1');
$ip = filter_var($host, FILTER_VALIDATE_IP) ? $host : gethostbyname($host);
if (!filter_var($ip, FILTER_VALIDATE_IP)) {
    error_log("auth: cannot resolve backend \"$host\"");
    if ($protocol === 'smtp') {
        header('Auth-Error-Code: 451 4.3.0');
    }
    answer_fail('Temporary server problem, try again later', $wait);
}

error_log("auth: \"$shown\" ($protocol, attempt $attempt) -> $ip:{$ports[$protocol]}");
header('Auth-Status: OK');
header("Auth-Server: $ip");
header("Auth-Port: {$ports[$protocol]}");
