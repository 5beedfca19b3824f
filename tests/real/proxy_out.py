#!/usr/bin/env python3
"""`proxy_protocol on|v2` towards the backend, proved with a real Dovecot that reads the header.

    python3 tests/real/proxy_out.py                       # mailproxy and nginx
    python3 tests/real/proxy_out.py --proxy mailproxy --proxy-bin target/release/mailproxy

Dovecot gets extra `haproxy = yes` listeners for IMAP and POP3; a small auth_http server
(in this process) routes every login there. The proxy listens on 127.0.0.4 with
`proxy_protocol on;` (and, for mailproxy only, the `v2` extension: nginx 1.22.1 rejects it);
imaplib and poplib connect over TLS from 127.0.0.3 and log in. The proxy itself reaches
Dovecot from 127.0.0.1, so Dovecot can only log `rip=127.0.0.3` with the client's port and
`lip=127.0.0.4` with the proxy's port if it read them from the PROXY header. The auth server
must also have been told `Client-IP: 127.0.0.3`.
Ends with `N passed, N failed`; exit status 1 if anything failed. Every process it starts is
stopped on exit, including on failure and Ctrl-C.
"""

import argparse
import imaplib
import os
import poplib
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "dovecot"))

import harness  # noqa: E402
from dovecot import PrivateDovecot  # noqa: E402

CLIENT_ADDRESS = "127.0.0.3"  # where the client connects from
PROXY_ADDRESS = "127.0.0.4"  # where the proxy listens: the header's destination
USER, PASSWORD = "alice", "secret"
# The test certificate names localhost and 127.0.0.1, not PROXY_ADDRESS: verify by name.
TLS_NAME = "localhost"


class RoutingAuth:
    """An auth_http server that sends every login to Dovecot's PROXY listener of its
    protocol, and remembers the Client-IP of each request."""

    def __init__(self, backend_ports):
        self.backend_ports = backend_ports  # Auth-Protocol -> port
        self.client_ips = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.client_ips.append(self.headers.get("Client-IP"))
                port = outer.backend_ports.get(self.headers.get("Auth-Protocol"))
                self.send_response(200)
                if port is None:
                    self.send_header("Auth-Status", "unexpected protocol")
                else:
                    self.send_header("Auth-Status", "OK")
                    self.send_header("Auth-Server", "127.0.0.1")
                    self.send_header("Auth-Port", str(port))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class SourcedIMAP(imaplib.IMAP4_SSL):
    """IMAP4_SSL whose socket is bound to CLIENT_ADDRESS (imaplib has no source_address)."""

    def _create_socket(self, timeout):
        sock = socket.create_connection((self.host, self.port), timeout,
                                        source_address=(CLIENT_ADDRESS, 0))
        return self.ssl_context.wrap_socket(sock, server_hostname=TLS_NAME)


class SourcedPOP3(poplib.POP3_SSL):
    """POP3_SSL whose socket is bound to CLIENT_ADDRESS (poplib has no source_address)."""

    def _create_socket(self, timeout):
        sock = socket.create_connection((self.host, self.port), timeout,
                                        source_address=(CLIENT_ADDRESS, 0))
        return self.context.wrap_socket(sock, server_hostname=TLS_NAME)


def imap_login(port, tls):
    """Log in over IMAP and select INBOX; returns the client's local port."""
    client = SourcedIMAP(PROXY_ADDRESS, port, ssl_context=tls, timeout=20)
    try:
        source_port = client.sock.getsockname()[1]
        client.login(USER, PASSWORD)
        typ, _ = client.select("INBOX")
        if typ != "OK":
            raise AssertionError(f"SELECT INBOX answered {typ}")
    except BaseException:
        client.shutdown()  # not LOGOUT: its error would hide the one that matters
        raise
    client.logout()
    return source_port


def pop3_login(port, tls):
    """Log in over POP3 and STAT; returns the client's local port."""
    client = SourcedPOP3(PROXY_ADDRESS, port, context=tls, timeout=20)
    try:
        source_port = client.sock.getsockname()[1]
        client.user(USER)
        client.pass_(PASSWORD)
        client.stat()
    except BaseException:
        client.close()  # not QUIT: its error would hide the one that matters
        raise
    client.quit()
    return source_port


def proxy_config(kind, version, state, auth_port, imap_port, pop3_port, cert, key):
    load = f"load_module {harness.NGINX_MAIL_MODULE};\n" if kind == "nginx" else ""
    servers = "".join(
        f"    server {{\n        listen {PROXY_ADDRESS}:{port} ssl;\n        protocol {proto};\n"
        f"        proxy_protocol {version};\n    }}\n"
        for proto, port in (("imap", imap_port), ("pop3", pop3_port))
    )
    return (
        f"# Written by tests/real/proxy_out.py\n{load}daemon off;\nworker_processes 1;\n"
        f"pid {state}/proxy.pid;\nerror_log {state}/error.log info;\nevents {{}}\n"
        f"mail {{\n    auth_http 127.0.0.1:{auth_port}/auth;\n"
        f"    ssl_certificate {cert};\n    ssl_certificate_key {key};\n{servers}}}\n"
    )


def wait_for_login_line(dovecot_log, offset, service, source_port, proxy_port):
    """The Dovecot login line for this session, written after `offset`; returns it or
    raises with what the log held instead."""
    wanted = re.compile(
        rf"{service}-login: Info: Login: user=<{USER}>, method=\S+, rip={re.escape(CLIENT_ADDRESS)}, "
        rf"rport={source_port}, lip={re.escape(PROXY_ADDRESS)}, lport={proxy_port}, ")
    deadline = time.monotonic() + 5
    text = ""
    while time.monotonic() < deadline:
        with open(dovecot_log, errors="replace") as f:
            f.seek(offset)
            text = f.read()
        for line in text.splitlines():
            if wanted.search(line):
                return line
        time.sleep(0.1)
    raise AssertionError(f"no line matching {wanted.pattern!r}; new log lines:\n{text}")


@dataclass
class Stand:
    """What every proxy run shares."""

    root: Path
    children: harness.Children
    dovecot: PrivateDovecot
    auth: RoutingAuth
    cert: Path
    key: Path
    tls: ssl.SSLContext


def check(name, login, service, port, stand):
    """One login through the proxy; returns None if Dovecot and the auth server saw the real
    client, else what went wrong."""
    offset = os.path.getsize(stand.dovecot.log_path)
    before = len(stand.auth.client_ips)
    try:
        source_port = login(port, stand.tls)
        line = wait_for_login_line(stand.dovecot.log_path, offset, service, source_port, port)
        seen = stand.auth.client_ips[before:]
        if seen != [CLIENT_ADDRESS]:
            raise AssertionError(f"auth server saw Client-IP {seen}")
    except (AssertionError, OSError, imaplib.IMAP4.error, poplib.error_proto) as exc:
        return f"{name}: {exc}"
    print(f"ok   {name}\n     dovecot: {line.strip()}", flush=True)
    return None


def run_proxy(stand, kind, binary, version):
    """Start one proxy with `proxy_protocol VERSION` on an IMAP and a POP3 server, log in
    through both; returns (passed, failures)."""
    state = stand.root / f"{kind}-{version}"
    state.mkdir()
    ports = {"imap": harness.free_port(), "pop3": harness.free_port()}
    conf = state / "mail.conf"
    conf.write_text(proxy_config(kind, version, state, stand.auth.port, ports["imap"],
                                 ports["pop3"], stand.cert, stand.key))
    proc = stand.children.start(kind, harness.proxy_command(kind, binary, conf, state),
                                state / "proxy.out")
    passed, failures = 0, []
    try:
        for port in ports.values():
            wait_for_port_on(PROXY_ADDRESS, port, proc, kind)
        for service, login in (("imap", imap_login), ("pop3", pop3_login)):
            name = f"{kind} proxy_protocol {version}: {service}"
            problem = check(name, login, service, ports[service], stand)
            if problem:
                print(f"FAIL {problem}", flush=True)
                failures.append(problem)
            else:
                passed += 1
        if proc.poll() is not None:
            failures.append(f"{kind} exited with status {proc.returncode} during the tests")
    except RuntimeError as exc:
        failures.append(f"{kind} proxy_protocol {version}: {exc}")
    if failures:
        for log in ("proxy.out", "error.log", "stderr.log"):
            tail = harness.log_tail(state / log)
            if tail:
                print(f"--- {kind} {version}: tail of {log} ---\n{tail}")
    stand.children.stop(proc)
    return passed, failures


def wait_for_port_on(address, port, proc, what):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} before listening")
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {address}:{port} in time")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--proxy", choices=("mailproxy", "nginx", "both"), default="both")
    parser.add_argument("--proxy-bin", help="mailproxy binary (default: target/release/mailproxy)")
    parser.add_argument("--nginx-bin", default=shutil.which("nginx") or "/usr/sbin/nginx")
    return parser.parse_args()


def plan(args):
    """(kind, binary, version) runs: nginx 1.22.1 knows only `on`."""
    mailproxy = args.proxy_bin or str(harness.target_dir() / "release" / "mailproxy")
    runs = []
    if args.proxy in ("mailproxy", "both"):
        runs += [("mailproxy", mailproxy, "on"), ("mailproxy", mailproxy, "v2")]
    if args.proxy in ("nginx", "both"):
        runs.append(("nginx", args.nginx_bin, "on"))
    missing = sorted({b for _, b, _ in runs if not os.path.exists(b)})
    if missing:
        sys.exit(f"proxy_out.py: missing {', '.join(missing)} (build with cargo build --release?)")
    return runs


def main():
    args = parse_args()
    runs = plan(args)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    root = Path(tempfile.mkdtemp(prefix="mailproxy-proxy-out-"))
    os.chmod(root, 0o711)  # Dovecot's and nginx's unprivileged processes traverse it
    children = harness.Children()
    haproxy_ports = {"imap": harness.free_port(), "pop3": harness.free_port()}
    dovecot = PrivateDovecot(root / "dovecot", harness.free_port(), harness.free_port(),
                             haproxy_ports=(haproxy_ports["imap"], haproxy_ports["pop3"]))
    passed, failures = 0, []
    try:
        dovecot.start()
        cert, key = harness.make_certificate(root)
        tls = ssl.create_default_context(cafile=str(cert))
        with RoutingAuth(haproxy_ports) as auth:
            stand = Stand(root, children, dovecot, auth, cert, key, tls)
            for kind, binary, version in runs:
                ok, problems = run_proxy(stand, kind, binary, version)
                passed += ok
                failures += problems
    except KeyboardInterrupt:
        failures.append("interrupted")
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        failures.append(f"setup failed: {exc}")
        print(dovecot.log_tail(), file=sys.stderr)
    finally:
        children.stop_all()
        dovecot.stop()
        shutil.rmtree(root, ignore_errors=True)
    for problem in failures:
        print(f"failed: {problem}")
    # Logins that never ran count as failed; a failure after all logins passed counts once.
    failed = max(2 * len(runs) - passed, 1 if failures else 0)
    print(f"{passed} passed, {failed} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
