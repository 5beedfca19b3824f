"""Scripted peers for the differential suite: an auth_http server and mail backends.

Both record every byte they receive, so the suite can compare what nginx and mailproxy sent to
them. One AuthServer serves all dialogues of one proxy; requests are routed to the dialogue by
their `Client-IP` header (each dialogue connects from its own 127.x.y.z source address). Each
dialogue run gets its own backend listener, whose port the auth answers name as `{backend}`.
"""

import asyncio
import re
from dataclasses import dataclass, field

from wire import Recorder, unescape

# Longest auth request or backend command the peers buffer before giving up on the peer.
MAX_PEER_BUFFER = 256 * 1024
# A stalled peer waits this long for the proxy to hang up before it gives up itself.
STALL_LIMIT = 30.0


# ---------------------------------------------------------------------------------------------
# auth_http


@dataclass
class AuthAnswer:
    """One scripted reply to one auth request (see README "Auth answers")."""

    kind: str  # "bytes": send `data` then close; "stall": never answer; "close": hang up
    data: str = ""  # escaped text; {backend} and {refused} are substituted per run
    delay: float = 0.0


def parse_auth_answers(spec: str) -> list[AuthAnswer]:
    """Parse `ANSWER ;; ANSWER ...`: successive requests for one login get successive answers."""
    return [_parse_one_answer(part.strip()) for part in spec.split(";;")]


def _parse_one_answer(spec: str) -> AuthAnswer:
    delay = 0.0
    m = re.match(r"delay\s+([\d.]+)\s+(.*)$", spec)
    if m:
        delay, spec = float(m.group(1)), m.group(2)
    word, _, rest = spec.partition(" ")
    rest = rest.strip()
    if word in ("stall", "close"):
        return AuthAnswer(word, delay=delay)
    if word == "raw":
        return AuthAnswer("bytes", rest, delay)
    if word == "ok":
        headers = ["Auth-Status: OK", "Auth-Server: 127.0.0.1", "Auth-Port: {backend}"]
    elif word == "fail":
        text, _, rest = rest.partition("|")
        headers = ["Auth-Status: " + text.strip()]
    elif word == "headers":
        headers = []
    else:
        raise ValueError("unknown auth answer %r" % spec)
    headers += [h.strip() for h in rest.split("|") if h.strip()]
    body = "".join(h + "\\r\\n" for h in headers)
    return AuthAnswer("bytes", "HTTP/1.0 200 OK\\r\\n" + body + "\\r\\n", delay)


@dataclass
class AuthRoute:
    """The auth side of one dialogue run: its script, its recorder, its backend port."""

    answers: dict[str, list[AuthAnswer]]
    placeholders: dict[str, str]
    recorder: Recorder = field(default_factory=Recorder)
    served: dict[str, int] = field(default_factory=dict)
    requests: int = 0

    def next_answer(self, login: str) -> AuthAnswer:
        key = login if login in self.answers else "*"
        script = self.answers.get(key)
        if not script:
            return AuthAnswer("bytes", "HTTP/1.0 200 OK\\r\\nAuth-Status: no script for login\\r\\n\\r\\n")
        n = self.served.get(key, 0)
        self.served[key] = n + 1
        return script[min(n, len(script) - 1)]

    def render(self, answer: AuthAnswer) -> bytes:
        text = answer.data
        for name, value in self.placeholders.items():
            text = text.replace("{%s}" % name, value)
        return unescape(text)


class AuthServer:
    """The auth_http peer of one proxy. Routes by Client-IP, records raw requests."""

    def __init__(self) -> None:
        self.routes: dict[str, AuthRoute] = {}
        self.unrouted: list[bytes] = []
        self.port = 0
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await _read_http_head(reader)
            route = self.routes.get(_header(request, "Client-IP"))
            if route is None:
                self.unrouted.append(request)
                return
            route.requests += 1
            route.recorder.mark("request %d" % route.requests)
            route.recorder.add(request)
            answer = route.next_answer(_header(request, "Auth-User"))
            await asyncio.sleep(answer.delay)
            if answer.kind == "stall":
                await _wait_for_hangup(reader)
            elif answer.kind == "bytes":
                writer.write(route.render(answer))
                await writer.drain()
        except (ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def _read_http_head(reader: asyncio.StreamReader) -> bytes:
    data = bytearray()
    while b"\r\n\r\n" not in data and len(data) < MAX_PEER_BUFFER:
        chunk = await asyncio.wait_for(reader.read(65536), 10)
        if not chunk:
            break
        data += chunk
    return bytes(data)


def _header(request: bytes, name: str) -> str:
    m = re.search(rb"^" + name.encode() + rb": ?(.*?)\r$", request, re.M | re.I)
    return m.group(1).decode("latin-1") if m else ""


async def _wait_for_hangup(reader: asyncio.StreamReader, recorder: Recorder | None = None) -> None:
    """Read (recording) until the other side closes, or STALL_LIMIT passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STALL_LIMIT
    while loop.time() < deadline:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), deadline - loop.time())
        except (asyncio.TimeoutError, ConnectionError):
            return
        if not chunk:
            return
        if recorder:
            recorder.add(chunk)


# ---------------------------------------------------------------------------------------------
# backends


class ScriptedBackend:
    """A backend listener for one dialogue run; subclasses implement one protocol.

    The script is a dict of options from the dialogue's `backend:` line. An option that names an
    action takes escaped bytes (with `{tag}` substituted where a tag is known) or one of the
    words `stall` (read until the proxy hangs up) and `close` (hang up at once).
    """

    defaults: dict[str, str] = {}

    def __init__(self, script: dict[str, str]) -> None:
        self.script = {**self.defaults, **script}
        self.recorder = Recorder()
        self.connections = 0
        self.open_connections = 0
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.stopping = False

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self, grace: float) -> None:
        """Give the proxy `grace` seconds to close its connections, then close everything."""
        await self.recorder.wait_until(lambda: self.open_connections == 0, grace)
        if self.open_connections:
            self.recorder.mark("proxy kept %d connection(s) open" % self.open_connections)
        self.stopping = True
        if self._server:
            self._server.close()
        for writer in self._writers:
            writer.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_connections += 1
        self._writers.append(writer)
        self.recorder.mark("connection %d" % self.connections)
        conn = _Conn(reader, writer, self)
        try:
            await self.converse(conn)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self.open_connections -= 1
            self.recorder.add(b"")  # wake up waiters

    async def act(self, conn: "_Conn", option: str, tag: str = "") -> bool:
        """Perform the scripted action `option`; False when the conversation is over."""
        action = self.script.get(option, "")
        if action == "stall":
            await _wait_for_hangup(conn.reader, self.recorder)
            conn.eof = True
            if not self.stopping:
                self.recorder.mark("eof")
            return False
        if action == "close":
            conn.hung_up = True
            self.recorder.mark("backend closed")
            return False
        conn.writer.write(unescape(action.replace("{tag}", tag)))
        await conn.writer.drain()
        return True

    async def converse(self, conn: "_Conn") -> None:
        raise NotImplementedError


class _Conn:
    """A recorded backend connection with a bounded line reader."""

    def __init__(self, reader, writer, backend: ScriptedBackend) -> None:
        self.reader, self.writer, self.backend = reader, writer, backend
        self.recorder = backend.recorder
        self.buffer = bytearray()
        self.eof = False
        self.hung_up = False

    async def fill(self) -> bool:
        chunk = await self.reader.read(65536)
        if not chunk:
            self.eof = True
            if not self.backend.stopping:
                self.recorder.mark("eof")
            return False
        self.recorder.add(chunk)
        self.buffer += chunk
        return len(self.buffer) <= MAX_PEER_BUFFER

    async def read_line(self) -> bytes | None:
        while b"\n" not in self.buffer:
            if not await self.fill():
                return None
        line, _, rest = bytes(self.buffer).partition(b"\n")
        self.buffer = bytearray(rest)
        return line + b"\n"

    async def read_exact(self, n: int) -> bytes | None:
        while len(self.buffer) < n:
            if not await self.fill():
                return None
        data, self.buffer = bytes(self.buffer[:n]), self.buffer[n:]
        return data


_LITERAL = re.compile(rb"\{(\d+)(\+?)\}\r?\n$")


class ImapBackend(ScriptedBackend):
    """IMAP server: greets, takes nginx's literal LOGIN, then serves SELECT/FETCH/LOGOUT.

    Options: greeting, cont (reply to a synchronising literal), login (reply to LOGIN; the words
    ok/no/untagged/long are shorthands), after (`serve` or an action run right after login).
    """

    defaults = {
        "greeting": "* OK backend ready\\r\\n",
        "cont": "+ go ahead\\r\\n",
        "login": "ok",
        "after": "serve",
    }
    login_shorthands = {
        "ok": "{tag} OK [CAPABILITY IMAP4rev1 IDLE] Logged in\\r\\n",
        "no": "{tag} NO [AUTHENTICATIONFAILED] Authentication failed.\\r\\n",
        "untagged": "* CAPABILITY IMAP4rev1 IDLE\\r\\n{tag} OK Logged in\\r\\n",
        "long": "{tag} OK \\{5000*x}\\r\\n",
    }

    def __init__(self, script: dict[str, str]) -> None:
        super().__init__(script)
        login = self.script["login"]
        self.script["login"] = self.login_shorthands.get(login, login)

    async def converse(self, conn: _Conn) -> None:
        if not await self.act(conn, "greeting"):
            return
        logged_in = False
        while True:
            command = await self._read_command(conn)
            if command is None:
                return
            if not logged_in and command.startswith(b"PROXY "):
                continue  # the PROXY protocol header of `proxy_protocol on`: no reply
            words = command.split()
            tag = words[0].decode("latin-1") if words else "*"
            verb = words[1].upper() if len(words) > 1 else b""
            if not logged_in and verb == b"LOGIN":
                logged_in = True
                if not await self.act(conn, "login", tag):
                    return
                if self.script["after"] != "serve" and not await self.act(conn, "after", tag):
                    return
                continue
            if not await self._serve(conn, tag, verb):
                return

    async def _read_command(self, conn: _Conn) -> bytes | None:
        """A full command with its literals; answers synchronising literals with `cont`."""
        command = b""
        while True:
            line = await conn.read_line()
            if line is None:
                return None
            command += line
            m = _LITERAL.search(line)
            if not m:
                return command
            if not m.group(2) and not await self.act(conn, "cont"):
                return None
            literal = await conn.read_exact(int(m.group(1)))
            if literal is None:
                return None
            command += literal

    async def _serve(self, conn: _Conn, tag: str, verb: bytes) -> bool:
        replies = {
            b"SELECT": "* 3 EXISTS\r\n* 0 RECENT\r\n%s OK [READ-WRITE] SELECT completed\r\n",
            b"FETCH": "* 1 FETCH (BODY[] {5}\r\nhello)\r\n%s OK FETCH completed\r\n",
            b"LOGOUT": "* BYE backend logging out\r\n%s OK LOGOUT completed\r\n",
        }
        reply = replies.get(verb, "%s OK " + verb.decode("latin-1") + " completed\r\n") % tag
        conn.writer.write(reply.encode("latin-1"))
        await conn.writer.drain()
        if verb == b"LOGOUT":
            conn.hung_up = True
            self.recorder.mark("backend closed")
            return False
        return True


# POP3 and SMTP backends plug in here: subclass ScriptedBackend, set `defaults`, write converse().
BACKENDS: dict[str, type[ScriptedBackend]] = {"imap": ImapBackend}

# Other protocols' backends live in their own modules (imported last: they subclass the above).
from peers_pop3 import Pop3Backend  # noqa: E402

BACKENDS["pop3"] = Pop3Backend
from peers_smtp import SmtpBackend  # noqa: E402  (it subclasses ScriptedBackend above)

BACKENDS["smtp"] = SmtpBackend
