"""The real-client tests, run once per (proxy, auth server) combination by run.py.

`TARGET` is set by run.py before each run: the ports of the proxy under test and of the
Dovecot behind it, the seeded messages and the capabilities the config announces.
"""

import imaplib
import poplib
import socket
import ssl
import subprocess
import threading
import time
import unittest
import uuid

from harness import sha256

TARGET = None  # a run.Target, set by run.py


def tls_context():
    """Trusts exactly the test certificate, so the proxy must serve the configured one."""
    return ssl.create_default_context(cafile=str(TARGET.cert))


def imaps():
    return imaplib.IMAP4_SSL("127.0.0.1", TARGET.tls_port, ssl_context=tls_context(), timeout=60)


def fetch_uid(client, uid):
    typ, data = client.uid("FETCH", str(uid), "(BODY.PEEK[])")
    if typ != "OK" or not data or not isinstance(data[0], tuple):
        raise AssertionError(f"UID FETCH {uid} failed: {typ} {data!r:.200}")
    return data[0][1]


class RawLine:
    """A raw IMAP connection for byte-exact checks of what the proxy itself says."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(20)
        self.buf = b""

    def read_until(self, terminator):
        while terminator not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"EOF before {terminator!r}; got {self.buf!r}")
            self.buf += chunk
        end = self.buf.index(terminator) + len(terminator)
        out, self.buf = self.buf[:end], self.buf[end:]
        return out

    def command(self, line, tag):
        """Send `line`, return every reply line up to the one tagged `tag` (or an untagged BAD)."""
        self.sock.sendall(line)
        out = b""
        while True:
            line = self.read_until(b"\r\n")
            out += line
            if line.startswith(tag + b" ") or line.startswith(b"* BAD"):
                return out

    def at_eof(self):
        try:
            return self.buf == b"" and self.sock.recv(1) == b""
        except (ConnectionResetError, ssl.SSLError):
            return True

    def close(self):
        self.sock.close()


def raw_tls():
    sock = socket.create_connection(("127.0.0.1", TARGET.tls_port), timeout=20)
    return RawLine(tls_context().wrap_socket(sock, server_hostname="127.0.0.1"))


def raw_plain(port):
    return RawLine(socket.create_connection(("127.0.0.1", port), timeout=20))


class ImplicitTls(unittest.TestCase):
    """IMAP over implicit TLS (the 993-style listener) with Python's imaplib."""

    def test_greeting_and_capability_are_the_proxys_own_bytes(self):
        conn = raw_tls()
        try:
            self.assertEqual(conn.read_until(b"\r\n"), b"* OK IMAP4 ready\r\n")
            auth = " ".join("AUTH=" + m.upper() for m in TARGET.auth_methods)
            expected = f"* CAPABILITY {' '.join(TARGET.capabilities)} {auth}\r\na1 OK completed\r\n"
            self.assertEqual(conn.command(b"a1 CAPABILITY\r\n", b"a1"), expected.encode())
        finally:
            conn.close()

    def test_login_list_select_fetch(self):
        client = imaps()
        try:
            typ, _ = client.login("alice", "secret")
            self.assertEqual(typ, "OK")
            typ, boxes = client.list()
            self.assertEqual(typ, "OK")
            self.assertTrue(any(b.endswith(b" INBOX") for b in boxes), boxes)
            typ, count = client.select("INBOX", readonly=True)
            self.assertEqual((typ, count), ("OK", [str(len(TARGET.messages)).encode()]))
            self.assertEqual(fetch_uid(client, TARGET.uids["small"]), TARGET.messages["small"])
            self.assertEqual(fetch_uid(client, TARGET.uids["utf8"]), TARGET.messages["utf8"])
        finally:
            client.logout()

    def test_10mib_message_is_byte_identical(self):
        client = imaps()
        try:
            client.login("alice", "secret")
            client.select("INBOX", readonly=True)
            started = time.monotonic()
            data = fetch_uid(client, TARGET.uids["big"])
            TARGET.timings["10 MiB fetch (imaplib)"] = time.monotonic() - started
            self.assertEqual(len(data), len(TARGET.messages["big"]))
            self.assertEqual(sha256(data), sha256(TARGET.messages["big"]))
        finally:
            client.logout()

    def test_password_with_space_and_quote(self):
        client = imaps()
        try:
            self.assertEqual(client.login("bob", 'p w"d')[0], "OK")
            self.assertEqual(client.select("INBOX")[0], "OK")
        finally:
            client.logout()

    def test_wrong_password_relays_dovecots_no(self):
        conn = raw_tls()
        try:
            conn.read_until(b"\r\n")
            reply = conn.command(b"t1 LOGIN alice wrong\r\n", b"t1")
            self.assertEqual(reply, b"t1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")
            self.assertTrue(conn.at_eof(), "proxy should close after relaying the backend's NO")
        finally:
            conn.close()

    def test_wrong_password_with_imaplib(self):
        client = imaps()
        try:
            with self.assertRaisesRegex(imaplib.IMAP4.error, r"AUTHENTICATIONFAILED"):
                client.login("alice", "not-the-password")
        finally:
            client.shutdown()

    def test_append_through_proxy_reaches_backend(self):
        message_id = f"{uuid.uuid4()}@mailproxy.test"
        body = (f"Message-ID: <{message_id}>\r\nSubject: via proxy\r\n\r\n").encode()
        body += b"".join(b"%07d appended through the proxy\r\n" % i for i in range(30000))
        client = imaps()
        try:
            client.login("bob", 'p w"d')
            self.assertEqual(client.append("INBOX", None, None, body)[0], "OK")
        finally:
            client.logout()
        direct = imaplib.IMAP4("127.0.0.1", TARGET.backend_port, timeout=60)
        try:
            direct.login("bob", 'p w"d')
            direct.select("INBOX", readonly=True)
            typ, found = direct.uid("SEARCH", None, "HEADER", "Message-ID", message_id)
            self.assertEqual(typ, "OK")
            uids = found[0].split()
            self.assertEqual(len(uids), 1, found)
            self.assertEqual(sha256(fetch_uid(direct, uids[0].decode())), sha256(body))
        finally:
            direct.logout()

    def test_parallel_sessions(self):
        errors = []

        def session():
            try:
                client = imaps()
                client.login("alice", "secret")
                client.select("INBOX", readonly=True)
                if fetch_uid(client, TARGET.uids["small"]) != TARGET.messages["small"]:
                    errors.append("wrong bytes")
                client.logout()
            except Exception as exc:  # collected and asserted below
                errors.append(repr(exc))

        threads = [threading.Thread(target=session) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])


class StartTls(unittest.TestCase):
    """The `starttls only` listener (143-style)."""

    def test_plaintext_side_refuses_login_and_offers_starttls(self):
        conn = raw_plain(TARGET.starttls_port)
        try:
            self.assertEqual(conn.read_until(b"\r\n"), b"* OK IMAP4 ready\r\n")
            caps = " ".join(TARGET.capabilities)
            expected = f"* CAPABILITY {caps} STARTTLS LOGINDISABLED\r\na1 OK completed\r\n"
            self.assertEqual(conn.command(b"a1 CAPABILITY\r\n", b"a1"), expected.encode())
            reply = conn.command(b"a2 LOGIN alice secret\r\n", b"a2")
            self.assertEqual(reply, b"a2 BAD invalid command\r\n")
        finally:
            conn.close()

    def test_starttls_then_login_and_fetch(self):
        client = imaplib.IMAP4("127.0.0.1", TARGET.starttls_port, timeout=60)
        try:
            self.assertEqual(client.starttls(ssl_context=tls_context())[0], "OK")
            self.assertEqual(client.login("alice", "secret")[0], "OK")
            client.select("INBOX", readonly=True)
            self.assertEqual(fetch_uid(client, TARGET.uids["small"]), TARGET.messages["small"])
        finally:
            client.logout()


def curl(*args, **kwargs):
    argv = ["curl", "-sS", "--max-time", "60", "--cacert", str(TARGET.cert), *args]
    return subprocess.run(argv, capture_output=True, check=False, **kwargs)


class Curl(unittest.TestCase):
    """curl as a second, independent IMAP client."""

    def base(self):
        return f"imaps://127.0.0.1:{TARGET.tls_port}"

    def assertCurlOk(self, result):
        self.assertEqual(result.returncode, 0, result.stderr.decode(errors="replace"))

    def test_list(self):
        result = curl(f"{self.base()}/INBOX", "-u", "alice:secret")
        self.assertCurlOk(result)
        self.assertIn(b"INBOX", result.stdout)
        self.assertTrue(result.stdout.startswith(b"* LIST "), result.stdout)

    def test_fetch_uid_1_exact_bytes(self):
        result = curl(f"{self.base()}/INBOX;UID={TARGET.uids['small']}", "-u", "alice:secret")
        self.assertCurlOk(result)
        self.assertEqual(result.stdout, TARGET.messages["small"])

    def test_fetch_10mib_message(self):
        result = curl(f"{self.base()}/INBOX;UID={TARGET.uids['big']}", "-u", "alice:secret")
        self.assertCurlOk(result)
        self.assertEqual(sha256(result.stdout), sha256(TARGET.messages["big"]))

    def test_wrong_password_fails(self):
        result = curl(f"{self.base()}/INBOX", "-u", "alice:wrong")
        self.assertEqual(result.returncode, 67, result.stderr)  # CURLE_LOGIN_DENIED

    def test_starttls_required(self):
        url = f"imap://127.0.0.1:{TARGET.starttls_port}/INBOX;UID={TARGET.uids['small']}"
        result = curl("--ssl-reqd", url, "-u", "alice:secret")
        self.assertCurlOk(result)
        self.assertEqual(result.stdout, TARGET.messages["small"])


def pop3_number(name):
    """The POP3 message number of a seeded message: its rank by UID in Alice's INBOX."""
    return sorted(TARGET.uids, key=TARGET.uids.get).index(name) + 1


def pop3s():
    return poplib.POP3_SSL("127.0.0.1", TARGET.pop3s_port, context=tls_context(), timeout=60)


class Pop3(unittest.TestCase):
    """POP3 over implicit TLS (a 995-style `pop3 ssl` listener) with poplib and curl."""

    def test_greeting_and_capa_are_the_proxys_own(self):
        client = pop3s()
        try:
            self.assertEqual(client.getwelcome(), b"+OK POP3 ready")
            self.assertEqual(client.capa(), {"TOP": [], "USER": [], "UIDL": [], "SASL": ["PLAIN", "LOGIN"]})
        finally:
            client.quit()

    def test_login_stat_and_10mib_retr_are_byte_identical(self):
        client = pop3s()
        try:
            client.user("alice")
            self.assertTrue(client.pass_("secret").startswith(b"+OK"))
            count, size = client.stat()
            self.assertEqual(count, len(TARGET.messages))
            started = time.monotonic()
            _, lines, _ = client.retr(pop3_number("big"))
            TARGET.timings["10 MiB RETR (poplib)"] = time.monotonic() - started
            data = b"\r\n".join(lines) + b"\r\n"
            self.assertEqual(len(data), len(TARGET.messages["big"]))
            self.assertEqual(sha256(data), sha256(TARGET.messages["big"]))
            _, lines, _ = client.retr(pop3_number("utf8"))
            self.assertEqual(b"\r\n".join(lines) + b"\r\n", TARGET.messages["utf8"])
        finally:
            client.quit()

    def test_wrong_password_relays_dovecots_err(self):
        client = pop3s()
        try:
            client.user("alice")
            with self.assertRaisesRegex(poplib.error_proto, r"-ERR \[AUTH\] Authentication failed"):
                client.pass_("wrong")
        finally:
            client.close()

    def test_curl_retrieves_the_10mib_message(self):
        url = f"pop3s://127.0.0.1:{TARGET.pop3s_port}/{pop3_number('big')}"
        result = curl(url, "-u", "alice:secret")
        self.assertEqual(result.returncode, 0, result.stderr.decode(errors="replace"))
        self.assertEqual(sha256(result.stdout), sha256(TARGET.messages["big"]))
