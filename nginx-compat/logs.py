#!/usr/bin/env python3
"""Which error_log gets which line: nginx 1.22.1 against mailproxy.

Both proxies run the same config in turn (same ports): two top-level error_log lines
(info, warn), two in mail{} (info, notice) that one server inherits, and two of its own
in the other server (info, error). The same IMAP sessions are played against each (a
login and relay, a refused login, an auth server that names no backend), then every
log's session lines (`*N ...`), reduced to `[level] message` with connection numbers
and client ports masked, must be the same; the top-level logs must hold no session line.
Debug lines are not compared (mailproxy's are its own; docs/nginx-differences.md).

    python3 nginx-compat/logs.py --mailproxy $CARGO_TARGET_DIR/release/mailproxy

Needs the reference nginx (`/usr/sbin/nginx`, libnginx-mod-mail) and root. Standard
library only.
"""

import argparse
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

LOGS = ["main-info", "main-warn", "mail-info", "mail-notice", "srv-info", "srv-error"]
LINE = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(\w+)\] \d+#\d+: (.*)$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listen(port: int) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    return s


def serve_forever(sock: socket.socket, handler) -> None:
    def loop():
        while True:
            conn, _ = sock.accept()
            threading.Thread(target=handler, args=(conn,), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()


def auth_handler(backend_port: int):
    def handle(conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        user = next((l.split(b":", 1)[1].strip() for l in data.split(b"\r\n")
                     if l.lower().startswith(b"auth-user:")), b"")
        if user == b"bad":
            answer = b"Auth-Status: Invalid login\r\n"
        elif user == b"nobackend":
            answer = b"Auth-Status: OK\r\n"
        else:
            answer = b"Auth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: %d\r\n" % backend_port
        conn.sendall(b"HTTP/1.0 200 OK\r\n" + answer + b"\r\n")
        conn.close()
    return handle


def imap_backend(conn: socket.socket) -> None:
    """Greets, takes the literal LOGIN, answers every command, closes on LOGOUT."""
    conn.sendall(b"* OK backend ready\r\n")
    tag = None
    for line in conn.makefile("rb"):
        if tag is None:
            tag = line.split(b" ")[0]
        if line.rstrip().endswith(b"}"):
            conn.sendall(b"+ go\r\n")
            continue
        if b"LOGOUT" in line.upper():
            conn.sendall(b"* BYE\r\n" + line.split(b" ")[0] + b" OK bye\r\n")
            conn.close()
            return
        conn.sendall(tag + b" OK done\r\n")


def session(port: int, lines: list[bytes]) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.recv(4096)
        for line in lines:
            try:
                s.sendall(line)
            except OSError:
                break
            time.sleep(0.3)
        s.settimeout(2)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass


def config(d: Path, auth: int, inherits: int, own: int) -> str:
    return f"""load_module /usr/lib/nginx/modules/ngx_mail_module.so;
daemon off;
worker_processes 1;
pid {d}/proxy.pid;
error_log {d}/main-info.log info;
error_log {d}/main-warn.log warn;
events {{}}
mail {{
    auth_http 127.0.0.1:{auth}/auth;
    error_log {d}/mail-info.log info;
    error_log {d}/mail-notice.log notice;
    server {{ listen 127.0.0.1:{inherits}; protocol imap; }}
    server {{ listen 127.0.0.1:{own}; protocol imap;
             error_log {d}/srv-info.log info; error_log {d}/srv-error.log error; }}
}}
"""


def run(program: str, d: Path, inherits: int, own: int) -> dict[str, list[str]]:
    d.mkdir()
    conf = d / "proxy.conf"
    conf.write_text(config(d, AUTH_PORT, inherits, own))
    proc = subprocess.Popen([program, "-c", str(conf), "-p", str(d) + "/"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(inherits)
        wait_port(own)
        session(inherits, [b"a CAPABILITY\r\n", b"b LOGIN alice pw\r\n", b"c NOOP\r\n", b"d LOGOUT\r\n"])
        session(own, [b"a LOGIN bad pw\r\n"])
        session(own, [b"a LOGIN nobackend pw\r\n"])
        time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return {name: read_log(d / f"{name}.log") for name in LOGS}


def wait_port(port: int) -> None:
    until = time.time() + 10
    while time.time() < until:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"port {port} never opened")


def read_log(path: Path) -> list[str]:
    lines = []
    for raw in path.read_text().splitlines() if path.exists() else []:
        m = LINE.match(raw)
        if not m or m.group(1) == "debug":
            continue
        message = re.sub(r"^\*\d+ ", "*N ", m.group(2))
        if not message.startswith("*N "):
            lines.append("[%s] (process) %s" % (m.group(1), message))
            continue
        message = re.sub(r"client 127\.0\.0\.1:\d+ connected", "client 127.0.0.1:PORT connected", message)
        lines.append("[%s] %s" % (m.group(1), message))
    return lines


AUTH_PORT = 0


def main() -> int:
    global AUTH_PORT
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nginx", default="/usr/sbin/nginx")
    ap.add_argument("--mailproxy", default="target/release/mailproxy")
    args = ap.parse_args()
    backend, AUTH_PORT = free_port(), free_port()
    serve_forever(listen(backend), imap_backend)
    serve_forever(listen(AUTH_PORT), auth_handler(backend))
    inherits, own = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="nginx-compat-logs-") as tmp:
        ours = run(args.mailproxy, Path(tmp) / "mailproxy", inherits, own)
        theirs = run(args.nginx, Path(tmp) / "nginx", inherits, own)
    failed = 0
    for name in LOGS:
        sessions_n = [l for l in theirs[name] if "(process)" not in l]
        sessions_m = [l for l in ours[name] if "(process)" not in l]
        problem = ""
        if name.startswith("main-") and (sessions_n or sessions_m):
            problem = "session lines in a top-level log"
        elif sessions_n != sessions_m:
            problem = "session lines differ"
        elif name in ("mail-info", "srv-info", "srv-error") and not sessions_n:
            problem = "no session line at all: the sessions did not run"
        if problem:
            failed += 1
            print(f"FAIL {name}.log: {problem}")
            print("  nginx:     " + "\n             ".join(sessions_n or ["(none)"]))
            print("  mailproxy: " + "\n             ".join(sessions_m or ["(none)"]))
        else:
            print(f"ok   {name}.log ({len(sessions_n)} session lines)")
    print(f"{len(LOGS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
