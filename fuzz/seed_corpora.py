#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/.

Run from anywhere: `python3 fuzz/seed_corpora.py`. Each target's directory is emptied and
rewritten, one file per distinct seed, named by the SHA-1 of its content.

- imap_preauth, pop3_preauth, smtp_preauth: what the client sends in each dialogue of
  nginx-compat/dialogues/<protocol>/, one read per `C:` step, behind the input header of
  fuzz/src/lib.rs with the settings of the dialogue's server block in nginx-compat/mail.conf.in
  (a PROXY header the client sends first goes to proxy_protocol instead);
- auth_response: every auth_http answer the dialogues script, as the scripted auth server
  renders it, and a few heads from src/auth/response_tests.rs;
- sasl: the SASL responses the dialogues send, and a few by hand;
- proxy_protocol: the PROXY headers the dialogues send, and the cases of
  src/net/proxy_protocol_tests.rs;
- dns_answer: answers as src/net/dns.rs's tests build them;
- config_parse: the configs of nginx-compat/configs/ and mail.conf.in.

Python 3 standard library only; it reads the dialogues with nginx-compat's own parser.
"""

import hashlib
import re
import shutil
import struct
import sys
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
REPO = FUZZ.parent
COMPAT = REPO / "nginx-compat"
sys.path.insert(0, str(COMPAT))

from dialogue import parse_dialogue  # noqa: E402
from wire import unescape  # noqa: E402

CLIENT_IP = b"127.1.0.1"
PLACEHOLDERS = {"backend": "9143", "refused": "9144"}
V2_SIGNATURE = b"\r\n\r\n\0\r\nQUIT\n"
# fuzz/src/lib.rs: BUFFER_SIZES, the sizes byte 0 can pick.
BUFFER_SIZES = [4096, 64, 1, 2, 7, 16, 31, 128, 255, 512, 1024, 0, 33, 100, 2048, 8192]
AUTH_BITS = ["plain", "login", "apop", "cram-md5", "external", "none"]
DEFAULT_AUTH = {"imap": {"plain"}, "pop3": {"plain"}, "smtp": {"plain", "login"}}


def server_blocks() -> dict:
    """Settings per `@@port:NAME@@` server block of mail.conf.in."""
    servers = {}
    text = (COMPAT / "mail.conf.in").read_text()
    for block in re.findall(r"\n    server \{\n(.*?)\n    \}", text, re.S):
        name = re.search(r"@@port:(\w+)@@", block).group(1)
        directives = {}
        for line in block.splitlines():
            words = line.strip().rstrip(";").split()
            if words and not words[0].startswith("#"):
                directives[words[0]] = words[1:]
        protocol = directives.get("protocol", ["imap"])[0]
        listen = directives.get("listen", [])
        auth = directives.get(protocol + "_auth")
        buffer = directives.get(protocol + "_client_buffer", ["4k"])[0]
        servers[name] = {
            "protocol": protocol,
            "ssl": "ssl" in listen,
            "proxy_protocol": "proxy_protocol" in listen,
            "starttls": directives.get("starttls", ["off"])[0],
            "auth": set(auth) if auth else DEFAULT_AUTH[protocol],
            "buffer": int(buffer[:-1]) * 1024 if buffer.endswith("k") else int(buffer),
            "max_errors": int(directives.get("max_errors", ["5"])[0]),
            "xclient": directives.get("xclient", ["on"])[0] == "on",
            "proxy_smtp_auth": directives.get("proxy_smtp_auth", ["off"])[0] == "on",
        }
    return servers


def header(server: dict, refusals: int, reads: list) -> bytes:
    """The five-byte header of the pre-auth targets plus the read sizes."""
    starttls = {"off": 0, "on": 1, "only": 2}[server["starttls"]]
    size = BUFFER_SIZES.index(server["buffer"]) if server["buffer"] in BUFFER_SIZES else 0
    a = starttls | (4 if server["ssl"] else 0) | size << 3
    b = sum(1 << i for i, name in enumerate(AUTH_BITS) if name in server["auth"])
    b |= (0x40 if server["xclient"] else 0) | (0x80 if server["proxy_smtp_auth"] else 0)
    sizes = [n - 1 if 1 <= n <= 127 else 0x7F for n in reads][:255]
    return bytes([a, b, server["max_errors"] % 16, refusals, len(sizes)] + sizes)


def proxy_header_len(data: bytes) -> int:
    """How much of a stream start is a PROXY header (0 if none, or all if broken)."""
    if data.startswith(V2_SIGNATURE) and len(data) >= 16:
        return min(len(data), 16 + struct.unpack(">H", data[14:16])[0])
    if data.startswith(b"PROXY "):
        end = data.find(b"\r\n")
        return len(data) if end < 0 else end + 2
    return 0


def render_answer(answer) -> bytes | None:
    if answer.kind != "bytes":
        return None
    text = answer.data
    for name, value in PLACEHOLDERS.items():
        text = text.replace("{%s}" % name, value)
    return unescape(text)


class Corpora:
    def __init__(self) -> None:
        self.seeds: dict[str, set] = {}

    def add(self, target: str, data: bytes) -> None:
        self.seeds.setdefault(target, set()).add(data)

    def write(self) -> None:
        for target, seeds in sorted(self.seeds.items()):
            directory = FUZZ / "corpus" / target
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True)
            for data in seeds:
                (directory / hashlib.sha1(data).hexdigest()).write_bytes(data)
            size = sum(len(d) for d in seeds)
            print(f"{target}: {len(seeds)} seeds, {size} bytes")


def from_dialogues(corpora: Corpora) -> None:
    servers = server_blocks()
    for path in sorted((COMPAT / "dialogues").glob("*/*.txt")):
        dlg = parse_dialogue(path)
        server = servers[dlg.server]
        writes = [s.data.replace(b"{client_ip}", CLIENT_IP) for s in dlg.steps if s.kind == "C"]
        if server["proxy_protocol"] and writes:
            cut = proxy_header_len(writes[0])
            corpora.add("proxy_protocol", writes[0])
            writes[0] = writes[0][cut:]
        writes = [w for w in writes if w]
        answers = [a for script in dlg.auth.values() for a in script]
        rendered = [r for r in map(render_answer, answers) if r is not None]
        # A refusal the client may retry after (Auth-Wait) keeps the dialogue going.
        retry = any(b"Auth-Wait" in r and b"Auth-Status: OK" not in r for r in rendered)
        if writes:
            seed = header(server, 0xFF if retry else 0, [len(w) for w in writes])
            corpora.add(server["protocol"] + "_preauth", seed + b"".join(writes))
        for response in rendered:
            corpora.add("auth_response", b"\x01\x00" + response)
        for write in writes:
            for line in write.split(b"\n"):
                words = line.strip().split(b" ")
                if re.fullmatch(rb"[A-Za-z0-9+/=]{4,}", words[-1]):
                    corpora.add("sasl", words[-1])
                for i, word in enumerate(words):
                    if word.upper() in (b"PLAIN", b"LOGIN", b"CRAM-MD5", b"EXTERNAL"):
                        corpora.add("sasl", b" ".join(words[i:]))


def by_hand(corpora: Corpora) -> None:
    for response in [
        b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 10.0.0.1\r\nAuth-Port: 143\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nAuth-Status: OK\r\nAuth-Server: ::1\r\nAuth-Port: 110\r\n"
        b"Auth-User: bob\r\nAuth-Pass: secret\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nAuth-Status: Invalid login or password\r\nAuth-Wait: 3\r\n"
        b"Auth-Error-Code: 535 5.7.8\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nAuth-Status: WAIT\r\nAuth-Wait: 1\r\n\r\n",
        b"Auth-Status: Bad\nAuth-Wait: 2\n\n",
        b"HTTX: 1\r\nAuth-Port: 7\r\n\r\n",
        b"HTTP/1.1 200\nAuth-Server: mail.example\nAuth-Port: 993\nConnection: close\n\n",
        b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 1.2.3.4\r\nAuth-Port: 25\r\n"
        b"Auth-User: a\0b\r\n\r\n",
        b"HTTP/1.0 200 OK\rX",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nAuth-Status:   spaced  text  \r\n\r\n",
    ]:
        corpora.add("auth_response", b"\x01\x00" + response)
        # The same head in 1-, 2- and 7-byte reads.
        corpora.add("auth_response", b"\x00\x03\x00\x01\x06" + response)

    for response in [b"AHVzZXIAcGFzcw==", b"dXNlcg", b"Ym9iIDAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVm",
                     b"=", b"YW!p", b"PLAIN AGFsaWNlAHNlY3JldA==", b"LOGIN", b"CRAM-MD5",
                     b"EXTERNAL dXNlcg=="]:
        corpora.add("sasl", response)

    v2 = lambda ver_cmd, fam, body: V2_SIGNATURE + bytes([ver_cmd, fam]) + struct.pack(">H", len(body)) + body
    for header_bytes in [
        b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 143\r\na1 CAPABILITY\r\n",
        b"PROXY TCP4 ::FFFF:1.2.3.4 2001:DB8::1 0 65535\r\n",
        b"PROXY TCP6 2001:db8::7 ::1 1 2\r\n",
        b"PROXY UNKNOWN whatever 1 2\r\nrest",
        b"PROXY UNKNOWN\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
        v2(0x21, 0x11, bytes([192, 0, 2, 7, 127, 0, 0, 1, 0x9C, 0x40, 0, 143])),
        v2(0x21, 0x21, bytes(15) + b"\x01" + bytes(15) + b"\x02" + b"\x00\x01\x00\x02"),
        v2(0x21, 0x11, bytes([1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]) + b"\x04\x00\x03abc"),
        v2(0x20, 0x00, b""),
        v2(0x21, 0x31, bytes(216)),
        v2(0x11, 0x11, bytes(12)),
        v2(0x21, 0x11, bytes(4)),
    ]:
        corpora.add("proxy_protocol", header_bytes)

    def name(text: str) -> bytes:
        return b"".join(bytes([len(label)]) + label.encode() for label in text.split(".")) + b"\0"

    def query(ident: int, qname: str, qtype: int) -> bytes:
        return struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0) + name(qname) + struct.pack(">HH", qtype, 1)

    def reply(q: bytes, rcode: int, answers: list) -> bytes:
        out = bytearray(q)
        out[2], out[3] = 0x81, 0x80 | rcode
        out[6:8] = struct.pack(">H", len(answers))
        for rtype, data in answers:
            out += b"\xc0\x0c" + struct.pack(">HHIH", rtype, 1, 60, len(data)) + data
        return bytes(out)

    ptr = query(7, "1.0.0.127.in-addr.arpa", 12)
    forward = query(9, "mail.example", 1)
    forward6 = query(11, "mail.example", 28)
    # Byte 0: query type (0 A, 1 PTR, 2 AAAA) for the raw reading of the input.
    for control, message in [
        (1, reply(ptr, 0, [(12, name("mail.example"))])),
        (1, reply(ptr, 3, [])),
        (1, reply(ptr, 0, [(12, b"\x04mail\xc0\x30")])),
        (1, reply(ptr, 0, [(5, name("alias.example")), (12, name("host.test"))])),
        (0, reply(forward, 0, [(1, bytes([127, 0, 0, 1])), (28, bytes(16))])),
        (0, reply(forward, 2, [])),
        (2, reply(forward6, 0, [(28, bytes(15) + b"\x01")])),
        (0, reply(forward, 0, [(1, bytes([127, 0, 0, 1]))])[:-3]),
    ]:
        corpora.add("dns_answer", bytes([control]) + message)
    # The built reading: type, id, then records (kind, data).
    corpora.add("dns_answer", bytes([1, 0, 7, 2, 0x81, 2, 4]) + b"mail" + bytes([7]) + b"example" + bytes([0, 4, 1, 2, 3, 4]))

    for path in sorted((COMPAT / "configs").rglob("*")):
        if path.is_file() and path.suffix in (".conf", "") and path.name != "README.md":
            data = path.read_bytes()
            if len(data) <= 64 * 1024:
                corpora.add("config_parse", data)
    corpora.add("config_parse", (COMPAT / "mail.conf.in").read_bytes())


def main() -> None:
    corpora = Corpora()
    from_dialogues(corpora)
    by_hand(corpora)
    corpora.write()


if __name__ == "__main__":
    main()
