"""A real HAProxy in front of the proxy: `send-proxy-v2` into `listen ... ssl proxy_protocol`.

run.py adds one server block to the derived config (`add_proxy_protocol_server`), starts a
private HAProxy (`haproxy -f CONF -db`, loopback ports only) with `start_haproxy`, and runs
`ThroughHaproxy` with the other cases. The client connects from 127.0.0.2, HAProxy from
127.0.0.1; with `set_real_ip_from 127.0.0.1` the proxy must log the client as 127.0.0.2, and
Dovecot behind it must see the login work.
"""

import shutil
import socket
import time
import unittest
from pathlib import Path

import cases
from dovecot import wait_for_port

TARGET = None  # a run.Target, set by run.py
CLIENT_ADDRESS = "127.0.0.2"


def available():
    return shutil.which("haproxy") is not None


def add_proxy_protocol_server(config, port):
    """The derived config with one more server: implicit TLS behind a trusted PROXY sender."""
    block = (
        "\n    # Added by tests/real/haproxy.py: HAProxy sends PROXY v2 to this port.\n"
        f"    server {{\n        listen 127.0.0.1:{port} ssl proxy_protocol;\n"
        "        protocol imap;\n        set_real_ip_from 127.0.0.1;\n    }\n"
    )
    end = config.rstrip().rfind("}")  # the mail block closes last
    if end < 0:
        raise ValueError("no closing brace for the mail block in the derived config")
    return config[:end] + block + config[end:]


def start_haproxy(children, state, front_port, proxy_port):
    """HAProxy in TCP mode on `front_port`, sending PROXY v2 to the proxy on `proxy_port`."""
    conf = Path(state) / "haproxy.cfg"
    conf.write_text(
        "defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 60s\n"
        "    timeout server 60s\n\n"
        f"frontend imaps\n    bind 127.0.0.1:{front_port}\n    default_backend mailproxy\n\n"
        f"backend mailproxy\n    server proxy 127.0.0.1:{proxy_port} send-proxy-v2\n"
    )
    proc = children.start("haproxy", ["haproxy", "-f", str(conf), "-db"], Path(state) / "haproxy.log")
    wait_for_port(front_port, time.monotonic() + 15, proc, "haproxy")
    return proc


@unittest.skipUnless(available(), "haproxy is not installed")
class ThroughHaproxy(unittest.TestCase):
    def connect(self):
        sock = socket.create_connection(("127.0.0.1", TARGET.haproxy_port), timeout=20,
                                        source_address=(CLIENT_ADDRESS, 0))
        return cases.RawLine(cases.tls_context().wrap_socket(sock, server_hostname="127.0.0.1"))

    def test_login_reaches_dovecot_and_the_log_names_the_real_client(self):
        c = self.connect()
        try:
            self.assertTrue(c.read_until(b"\r\n").startswith(b"* OK"))
            reply = c.command(b"h1 LOGIN alice secret\r\n", b"h1")
            self.assertIn(b"h1 OK", reply)
            reply = c.command(b"h2 SELECT INBOX\r\n", b"h2")
            self.assertIn(b"h2 OK", reply)  # Dovecot answered through HAProxy and the proxy
            c.command(b"h3 LOGOUT\r\n", b"h3")
        finally:
            c.close()
        wanted = f'client logged in, client: {CLIENT_ADDRESS}, server: 127.0.0.1:{TARGET.pp_port}'
        deadline = time.monotonic() + 5
        log = ""
        while time.monotonic() < deadline:
            log = TARGET.error_log.read_text(errors="replace")
            if wanted in log:
                break
            time.sleep(0.1)
        self.assertIn(wanted, log)
