#!/usr/bin/env python3
"""Real SMTP clients through the proxy into a real, private Postfix.

    python3 tests/real/smtp.py --proxy mailproxy [--proxy-bin PATH]
    python3 tests/real/smtp.py --proxy nginx              # the reference, proves the harness

Starts a private Postfix (tests/real/postfix.py: XCLIENT trusted from loopback, messages held
in its queue), a small auth_http server (below), and the proxy with three SMTP servers: SMTPS
(`listen ... ssl`, AUTH, XCLIENT), submission with STARTTLS, and `smtp_auth none`. Then Python's
smtplib and curl send mail; each case reads the held message back with postcat and checks that
Postfix saw the client's own address (each case connects from its own 127.0.0.x) and HELO,
which only XCLIENT can tell it. Ends with `N passed, N failed, N skipped`.
"""

import argparse
import os
import shutil
import signal
import smtplib
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "dovecot"))

import harness  # noqa: E402
import postfix  # noqa: E402
from dovecot import wait_for_port  # noqa: E402

USERS = {"alice": "secret"}
CONFIG = """\
load_module /usr/lib/nginx/modules/ngx_mail_module.so;
daemon off;
master_process off;
worker_processes 1;
pid {state}/proxy.pid;
error_log {state}/error.log info;
events {{ worker_connections 256; }}
mail {{
    server_name mx.test;
    auth_http 127.0.0.1:{auth}/auth;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    server {{ listen 127.0.0.1:{smtps} ssl; protocol smtp; }}
    server {{ listen 127.0.0.1:{submission}; protocol smtp; starttls on; }}
    server {{ listen 127.0.0.1:{mx}; protocol smtp; smtp_auth none; }}
}}
"""


class AuthHandler(BaseHTTPRequestHandler):
    """auth_http: alice/secret and every `none` request go to Postfix; the rest are refused."""

    backend_port = 0
    requests = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        headers = {k: v for k, v in self.headers.items()}
        AuthHandler.requests.append(headers)
        method, user = headers.get("Auth-Method"), headers.get("Auth-User", "")
        self.send_response(200)
        if method == "none" or USERS.get(user) == headers.get("Auth-Pass"):
            self.send_header("Auth-Status", "OK")
            self.send_header("Auth-Server", "127.0.0.1")
            self.send_header("Auth-Port", str(AuthHandler.backend_port))
        else:
            self.send_header("Auth-Status", "Invalid login or password")
        self.end_headers()

    def log_message(self, *args):
        pass


class Env:
    """What the cases talk to (set by main)."""

    postfix = None
    smtps = submission = mx = 0
    label = ""


def client_tls():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class SmtpThroughProxy(unittest.TestCase):
    def setUp(self):
        Env.postfix.delete_all()
        AuthHandler.requests.clear()

    def held_message(self):
        ids = Env.postfix.held()
        self.assertEqual(len(ids), 1, f"held queue: {ids}\n{Env.postfix.log()[-2000:]}")
        return Env.postfix.message(ids[0])

    def assert_seen_as(self, message, helo, ip):
        # Postfix's own Received line names the HELO and address XCLIENT gave it.
        self.assertIn(f"Received: from {helo} (unknown [{ip}])", message)

    def test_smtps_login_and_send(self):
        with smtplib.SMTP_SSL("127.0.0.1", Env.smtps, local_hostname="client.example",
                              context=client_tls(), source_address=("127.0.0.2", 0), timeout=10) as s:
            s.login("alice", "secret")
            s.sendmail("alice@example.org", ["bob@example.net"], "Subject: smtps\r\n\r\nhello\r\n")
        message = self.held_message()
        self.assert_seen_as(message, "client.example", "127.0.0.2")
        self.assertIn("Subject: smtps", message)
        self.assertIn("sasl_username=alice", Env.postfix.log())
        self.assertEqual(AuthHandler.requests[0].get("Client-Host"), "[UNAVAILABLE]")

    def test_starttls_login_and_send(self):
        with smtplib.SMTP("127.0.0.1", Env.submission, local_hostname="submit.example",
                          source_address=("127.0.0.3", 0), timeout=10) as s:
            s.starttls(context=client_tls())
            s.login("alice", "secret")
            s.sendmail("alice@example.org", ["carol@example.net"], "Subject: starttls\r\n\r\nhi\r\n")
        self.assert_seen_as(self.held_message(), "submit.example", "127.0.0.3")

    def test_auth_none_relays_the_envelope(self):
        with smtplib.SMTP("127.0.0.1", Env.mx, local_hostname="mta.example",
                          source_address=("127.0.0.4", 0), timeout=10) as s:
            refused = s.sendmail("sender@example.org", ["dave@example.net"], "Subject: none\r\n\r\nx\r\n")
        self.assertEqual(refused, {})
        message = self.held_message()
        self.assert_seen_as(message, "mta.example", "127.0.0.4")
        request = AuthHandler.requests[0]
        self.assertEqual(request.get("Auth-Method"), "none")
        self.assertEqual(request.get("Auth-SMTP-Helo"), "mta.example")
        self.assertEqual(request.get("Auth-SMTP-From"), "mail FROM:<sender@example.org>")
        self.assertEqual(request.get("Auth-SMTP-To"), "rcpt TO:<dave@example.net>")

    def test_wrong_password_is_refused(self):
        # One mechanism only: smtplib's login() would try LOGIN next on the closed connection.
        with smtplib.SMTP_SSL("127.0.0.1", Env.smtps, context=client_tls(), timeout=10) as s:
            s.ehlo()
            s.user, s.password = "alice", "wrong"
            with self.assertRaises(smtplib.SMTPAuthenticationError) as caught:
                s.auth("PLAIN", s.auth_plain)
        self.assertEqual(caught.exception.smtp_code, 535)
        self.assertEqual(caught.exception.smtp_error, b"5.7.0 Invalid login or password")

    def test_curl_smtps(self):
        with tempfile.NamedTemporaryFile("w", suffix=".eml", delete=False) as f:
            f.write("Subject: curl\r\n\r\nsent by curl\r\n")
        try:
            done = subprocess.run(
                ["curl", "-sS", "--insecure", "--interface", "127.0.0.5",
                 f"smtps://127.0.0.1:{Env.smtps}/curl.example", "--user", "alice:secret",
                 "--mail-from", "alice@example.org", "--mail-rcpt", "erin@example.net",
                 "--upload-file", f.name],
                capture_output=True, text=True, timeout=30)
        finally:
            os.unlink(f.name)
        self.assertEqual(done.returncode, 0, done.stderr)
        message = self.held_message()
        self.assert_seen_as(message, "curl.example", "127.0.0.5")
        self.assertIn("sent by curl", message)


def start_auth(backend_port):
    AuthHandler.backend_port = backend_port
    server = ThreadingHTTPServer(("127.0.0.1", 0), AuthHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--proxy", choices=("mailproxy", "nginx"), default="mailproxy")
    parser.add_argument("--proxy-bin")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if args.proxy_bin is None:
        args.proxy_bin = (str(harness.target_dir() / "release" / "mailproxy")
                          if args.proxy == "mailproxy" else shutil.which("nginx") or "/usr/sbin/nginx")
    why_not = postfix.available()
    if why_not:
        print(f"SMTP stage skipped: {why_not}")
        print("0 passed, 0 failed, 1 skipped")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    root = Path(tempfile.mkdtemp(prefix="mailproxy-smtp-"))
    root.chmod(0o755)
    children = harness.Children()
    failed = passed = 0
    auth = None
    try:
        Env.postfix = postfix.PrivatePostfix(root / "postfix", harness.free_port())
        Env.postfix.start(children, wait_for_port)
        auth = start_auth(Env.postfix.port)
        cert, key = harness.make_certificate(root)
        Env.smtps, Env.submission, Env.mx = (harness.free_port() for _ in range(3))
        state = root / args.proxy
        state.mkdir()
        conf = state / "mail.conf"
        conf.write_text(CONFIG.format(state=state, auth=auth.server_address[1], cert=cert, key=key,
                                      smtps=Env.smtps, submission=Env.submission, mx=Env.mx))
        argv = harness.proxy_command(args.proxy, args.proxy_bin, conf, state)
        proc = children.start(args.proxy, argv, state / "proxy.out")
        for port in (Env.smtps, Env.submission, Env.mx):
            wait_for_port(port, time.monotonic() + 20, proc, args.proxy)
        print(f"\n=== SMTP: proxy={args.proxy} backend=postfix ===", flush=True)
        suite = unittest.defaultTestLoader.loadTestsFromTestCase(SmtpThroughProxy)
        result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
        failed = len(result.failures) + len(result.errors)
        passed = result.testsRun - failed
        if failed:
            for name in ("error.log", "stderr.log", "proxy.out"):
                print(f"--- {name} ---\n{harness.log_tail(state / name)}")
            print(f"--- postfix maillog ---\n{Env.postfix.log()[-3000:]}")
    except KeyboardInterrupt:
        failed += 1
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(f"SMTP stage setup failed: {exc}")
        if Env.postfix is not None:
            print(Env.postfix.log()[-3000:])
        failed += 1
    finally:
        if auth is not None:
            auth.shutdown()
        if Env.postfix is not None:
            Env.postfix.stop()
        children.stop_all()
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(f"{passed} passed, {failed} failed, 0 skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
