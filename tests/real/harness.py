"""Plumbing for the real-world tests: child processes, ports, certificates, proxy config.

Everything started here is a child of this Python process in its own session, registered in
one `Children` list, and stopped (whole process group, TERM then KILL) when the run ends,
also on failure, Ctrl-C or SIGTERM.
"""

import hashlib
import imaplib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "dovecot"))
from dovecot import wait_for_port  # noqa: E402  (shared with the Dovecot fixture)

REPO = Path(__file__).resolve().parents[2]
MIGRATION_CONF = REPO / "examples" / "migration" / "nginx.conf"
NGINX_MAIL_MODULE = "/usr/lib/nginx/modules/ngx_mail_module.so"


def target_dir():
    """Where cargo puts binaries: $CARGO_TARGET_DIR if set, else ./target."""
    return Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")


def free_port():
    """A currently free loopback port (the kernel's choice, so parallel runs do not clash)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Children:
    """Child processes to stop at the end, in reverse start order."""

    def __init__(self):
        self.procs = []  # (name, Popen)

    def start(self, name, argv, log_path, env=None, cwd=None):
        log = open(log_path, "ab")
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,  # own process group: nginx workers die with the master
        )
        log.close()
        self.procs.append((name, proc))
        return proc

    def stop(self, proc, timeout=10.0):
        if proc.poll() is None:
            self._signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(proc, signal.SIGKILL)
                proc.wait()
        # Reap leftovers of the group (e.g. workers still draining) that outlived the leader.
        self._signal_group(proc, signal.SIGKILL)
        self.procs = [(n, p) for n, p in self.procs if p is not proc]

    def stop_all(self):
        for _, proc in reversed(list(self.procs)):
            self.stop(proc)

    @staticmethod
    def _signal_group(proc, sig):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def make_certificate(directory):
    """A self-signed certificate for 127.0.0.1/localhost; returns (cert_path, key_path)."""
    cert = Path(directory) / "cert.pem"
    key = Path(directory) / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return cert, key


def _replace_once(text, pattern, replacement):
    new, count = re.subn(pattern, lambda _: replacement, text, flags=re.MULTILINE)
    if count != 1:
        raise ValueError(f"expected exactly one match of {pattern!r} in the config, got {count}")
    return new


def derive_proxy_config(template, *, tls_port, starttls_port, auth_port, cert, key, state, pop3s_port=None):
    """The migration example, moved to loopback test ports, a temp dir and a test cert.

    Only the lines an admin would EDIT are replaced, and each must exist exactly once, so the
    tests fail if examples/migration/nginx.conf drifts away from what they exercise.
    """
    text = template
    for pattern, replacement in [
        (r"^\s*listen\s+993\s+ssl;", f"        listen 127.0.0.1:{tls_port} ssl;"),
        (r"^\s*listen\s+143;", f"        listen 127.0.0.1:{starttls_port};"),
        (r"^\s*auth_http\s+\S+;", f"    auth_http 127.0.0.1:{auth_port}/auth;"),
        (r"^\s*ssl_certificate\s+\S+;", f"    ssl_certificate {cert};"),
        (r"^\s*ssl_certificate_key\s+\S+;", f"    ssl_certificate_key {key};"),
        (r"^pid\s+\S+;", f"pid {state}/proxy.pid;"),
        (r"^error_log\s+.*;", f"error_log {state}/error.log info;"),
        (r"^worker_processes\s+\S+;", "worker_processes 2;"),
    ]:
        text = _replace_once(text, pattern, replacement)
    if pop3s_port is not None:
        text = add_pop3s_server(text, pop3s_port)
    return "# Derived by tests/real/harness.py from examples/migration/nginx.conf\ndaemon off;\n" + text


def add_pop3s_server(text, port):
    """A `pop3 ssl` listener (995-style) before the `mail {}` block's closing brace."""
    block = f"\n    server {{\n        listen 127.0.0.1:{port} ssl;\n        protocol pop3;\n    }}\n"
    end = text.rstrip().rfind("}")
    return text[:end] + block + text[end:]


def config_capabilities(template):
    """(imap_capabilities items, imap_auth methods) as written in the config."""
    caps = re.search(r"^\s*imap_capabilities\s+([^;]+);", template, re.MULTILINE)
    auth = re.search(r"^\s*imap_auth\s+([^;]+);", template, re.MULTILINE)
    items = [t.strip("\"'") for t in caps.group(1).split()] if caps else ["IMAP4", "IMAP4rev1", "UIDPLUS"]
    methods = auth.group(1).split() if auth else ["plain"]
    return items, methods


def proxy_command(kind, binary, conf, state):
    if kind == "nginx":
        # -p/-e keep nginx away from /var/log/nginx and its compiled-in prefix.
        return [binary, "-p", f"{state}/", "-e", f"{state}/stderr.log", "-c", str(conf)]
    return [binary, "-c", str(conf)]


def start_php_auth(children, script, port, backend_port, state, pop3_port=110):
    env = dict(os.environ, BACKEND_HOST="127.0.0.1", BACKEND_IMAP_PORT=str(backend_port),
               BACKEND_POP3_PORT=str(pop3_port))
    argv = ["php", "-S", f"127.0.0.1:{port}", str(script)]
    proc = children.start("php auth", argv, Path(state) / "auth.log", env=env, cwd=state)
    wait_for_port(port, time.monotonic() + 15, proc, "php -S")
    return proc


def start_rust_auth(children, binary, port, backend_port, state, pop3_port=110):
    conf = Path(state) / "auth.toml"
    conf.write_text(f'listen = "127.0.0.1:{port}"\n\n[backend]\nimap = "127.0.0.1:{backend_port}"\n'
                    f'pop3 = "127.0.0.1:{pop3_port}"\n')
    proc = children.start("mailproxy-auth", [str(binary), "-c", str(conf)], Path(state) / "auth.log")
    wait_for_port(port, time.monotonic() + 15, proc, "mailproxy-auth")
    return proc


# --- the mailbox the tests read -----------------------------------------------------------

BIG_SIZE = 10 * 1024 * 1024


def _message(subject, message_id, body):
    head = (
        "From: Legacy Server <legacy@example.com>\r\n"
        "To: Alice <alice@example.com>\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: <{message_id}>\r\n"
        "Date: Mon, 02 Jan 2006 15:04:05 +0000\r\n"
        "MIME-Version: 1.0\r\n"
    ).encode()
    return head + body


def big_message(size=BIG_SIZE, seed=20060102):
    """A message of at least `size` bytes: base64 of seeded random bytes, 76-char CRLF lines."""
    import base64

    rng = random.Random(seed)
    head = _message("the 10 MiB attachment", "big@mailproxy.test", b"")
    head += b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    # Each 57 random bytes encode to one 76-character line, 78 bytes with its CRLF.
    line_count = -(-(size - len(head)) // 78)
    raw = rng.randbytes(line_count * 57)
    encoded = base64.b64encode(raw)
    lines = [encoded[i : i + 76] for i in range(0, len(encoded), 76)]
    return head + b"\r\n".join(lines) + b"\r\n"


def seed_messages():
    """name -> exact bytes, in the order they are appended (so UIDs are 1, 2, 3)."""
    small = _message(
        "hello from the legacy server",
        "small@mailproxy.test",
        b"Content-Type: text/plain; charset=us-ascii\r\n\r\nHello Alice.\r\nThis is message one.\r\n",
    )
    utf8 = _message(
        "=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=",
        "utf8@mailproxy.test",
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Gr\u00fc\u00dfe aus K\u00f6ln \u2014 \u65e5\u672c\u8a9e \U0001f600\r\n".encode(),
    )
    return {"small": small, "big": big_message(), "utf8": utf8}


def seed_mailbox(imap_port, user, password, messages):
    """APPEND `messages` to the user's INBOX directly at Dovecot; returns name -> UID."""
    uids = {}
    client = imaplib.IMAP4("127.0.0.1", imap_port, timeout=60)
    try:
        client.login(user, password)
        for name, data in messages.items():
            typ, resp = client.append("INBOX", None, None, data)
            if typ != "OK":
                raise RuntimeError(f"APPEND {name} failed: {resp}")
            uids[name] = int(re.search(rb"APPENDUID \d+ (\d+)", resp[0]).group(1))
    finally:
        client.logout()
    return uids


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def log_tail(path, lines=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""
