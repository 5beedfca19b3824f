"""The dialogue format (see README.md): parsing a dialogue file and playing it against a proxy.

Playing a dialogue yields three rendered streams (what the client, the backend and the auth
server received) and the list of expectation failures. The runner compares the streams of two
proxies; the expectations check a proxy against the reference document.
"""

import asyncio
import re
import shlex
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from peers import BACKENDS, AuthAnswer, AuthRoute, AuthServer, parse_auth_answers
from wire import Recorder, escape, unescape

STEP_WORDS = ("C:", "S:", "A:", "B:", "S*:", "A*:", "B*:", "wait", "close", "shutdown", "eof-expected", "starttls", "took")
# How long the client keeps reading after the last step to catch unexpected trailing bytes.
DRAIN_SECONDS = 0.3
# How long the proxy gets to close its backend connections once the client is gone.
BACKEND_GRACE = 1.5


@dataclass
class Step:
    kind: str  # one of STEP_WORDS without the colon
    line: int
    data: bytes = b""
    low: float = 0.0
    high: float = 0.0


@dataclass
class Dialogue:
    name: str
    path: Path
    title: str = ""
    protocol: str = "imap"
    server: str = ""
    tls: str = "no"  # "implicit": the client starts with a TLS handshake
    client_cert: str = ""  # a name of pki.CLIENT_CERTS the client presents in TLS handshakes
    timeout: float = 2.5  # per expectation
    auth: dict[str, list[AuthAnswer]] = field(default_factory=dict)
    backend: dict[str, str] = field(default_factory=dict)
    masks: list[re.Pattern] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)


class DialogueError(ValueError):
    pass


def parse_dialogue(path: Path) -> Dialogue:
    """Header lines `key: value` up to the first blank line, then one step per line."""
    dlg = Dialogue(name=path.stem, path=path)
    in_header = True
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.rstrip("\n")
        if line.startswith("#"):
            continue
        if in_header and not line.strip():
            in_header = False
            continue
        if not line.strip():
            continue
        try:
            if in_header:
                _parse_header(dlg, line)
            else:
                dlg.steps.append(_parse_step(line, number))
        except (ValueError, KeyError) as err:
            raise DialogueError("%s:%d: %s" % (path, number, err)) from None
    if not dlg.server:
        raise DialogueError("%s: no `server:` header" % path)
    if dlg.protocol not in BACKENDS:
        raise DialogueError("%s: unknown protocol %r" % (path, dlg.protocol))
    return dlg


def _parse_header(dlg: Dialogue, line: str) -> None:
    if line.startswith("auth "):
        login, sep, spec = line[5:].partition(": ")
        if not sep:
            raise ValueError("expected `auth LOGIN: ANSWER`")
        dlg.auth[login.strip()] = parse_auth_answers(spec)
        return
    key, sep, value = line.partition(":")
    if not sep:
        raise ValueError("expected `key: value` in the header")
    key, value = key.strip(), value.strip()
    if key == "title":
        dlg.title = value
    elif key in ("protocol", "server", "tls"):
        setattr(dlg, key, value)
    elif key == "client-cert":
        dlg.client_cert = value
    elif key == "mask":
        dlg.masks.append(re.compile(value))
    elif key == "timeout":
        dlg.timeout = float(value)
    elif key == "backend":
        for word in shlex.split(value):
            name, _, action = word.partition("=")
            dlg.backend[name] = action
    else:
        raise ValueError("unknown header %r" % key)


def _parse_step(line: str, number: int) -> Step:
    word = line.split(" ", 1)[0]
    if word in ("C:", "S:", "A:", "B:"):
        # Everything after "X: " is data, trailing spaces included.
        return Step(word[0], number, unescape(line[3:]))
    if word in ("S*:", "A*:", "B*:"):
        return Step(word[:2], number, unescape(line[4:]))
    if word not in STEP_WORDS:
        raise ValueError("unknown step %r" % word)
    args = line.split()[1:]
    if word == "wait":
        return Step("wait", number, low=float(args[0]))
    if word == "took":
        low, _, high = args[0].partition("..")
        return Step("took", number, low=float(low or 0), high=float(high or "inf"))
    return Step(word, number)


def client_tls_context(cert: tuple[str, str] | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(*cert)
    return ctx


@dataclass
class Target:
    """Where one proxy under test listens, and its auth peer."""

    label: str
    ports: dict[str, int]
    auth: AuthServer
    refused_port: int
    client_certs: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass
class Outcome:
    streams: dict[str, list[str]]
    failures: list[str]
    seconds: float


async def play(dlg: Dialogue, target: Target, client_ip: str) -> Outcome:
    """Run one dialogue against one proxy; the auth server must route `client_ip` to us."""
    backend = BACKENDS[dlg.protocol](dlg.backend)
    await backend.start()
    placeholders = {"backend": str(backend.port), "refused": str(target.refused_port)}
    route = AuthRoute(dlg.auth, placeholders)
    target.auth.routes[client_ip] = route
    player = _Player(dlg, target, client_ip)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        await player.run(route.recorder, backend.recorder)
    finally:
        await backend.stop(BACKEND_GRACE)
        del target.auth.routes[client_ip]
    streams = {
        "client": _masked(player.client.render(), dlg.masks),
        "backend": _masked(backend.recorder.render(), dlg.masks),
        "auth": _masked(route.recorder.render(), dlg.masks),
    }
    return Outcome(streams, player.failures, loop.time() - started)


def _masked(lines: list[str], masks: list[re.Pattern]) -> list[str]:
    """Hide what is random by design (CRAM-MD5 salts) so equal runs compare equal."""
    for mask in masks:
        lines = [mask.sub("<masked>", line) for line in lines]
    return lines


class _Player:
    """Plays the client side of a dialogue and checks the expectations on the way."""

    def __init__(self, dlg: Dialogue, target: Target, client_ip: str) -> None:
        self.dlg, self.target, self.client_ip = dlg, target, client_ip
        self.client = Recorder()
        self.failures: list[str] = []
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.eof = False
        self.last_send = 0.0
        self.last_match = 0.0

    async def run(self, auth: Recorder, backend: Recorder) -> None:
        if not await self._connect():
            return
        streams = {"S": self.client, "A": auth, "B": backend}
        try:
            for step in self.dlg.steps:
                await self._step(step, streams)
            await self._read_until(lambda: self.eof, DRAIN_SECONDS)
            self._check_all_expected(streams)
        finally:
            if self.writer:
                self.writer.close()

    def _check_all_expected(self, streams: dict[str, Recorder]) -> None:
        """A stream with any expectation must be expected in full: leftovers are failures."""
        used = {step.kind.rstrip("*") for step in self.dlg.steps}
        for kind, stream in streams.items():
            if kind in used and stream.cursor < len(stream.data):
                extra = escape(bytes(stream.data[stream.cursor :]))
                self.failures.append("%s: unexpected bytes at the end: %s" % (kind, extra))

    async def _connect(self) -> bool:
        port = self.target.ports[self.dlg.server]
        implicit = self.dlg.tls == "implicit"
        try:
            self.reader, self.writer = await asyncio.wait_for(
                asyncio.open_connection(
                    "127.0.0.1",
                    port,
                    local_addr=(self.client_ip, 0),
                    ssl=self._tls_context() if implicit else None,
                ),
                self.dlg.timeout,
            )
        except (OSError, asyncio.TimeoutError, ssl.SSLError) as err:
            self.client.mark("connect failed: %s" % type(err).__name__)
            self.failures.append("connect to %s port %d failed: %s" % (self.dlg.server, port, err))
            return False
        if implicit:
            self.client.mark("tls")
        return True

    async def _step(self, step: Step, streams: dict[str, Recorder]) -> None:
        loop = asyncio.get_running_loop()
        if step.kind == "C":
            self.last_send = loop.time()
            if not self.eof:
                try:
                    self.writer.write(step.data.replace(b"{client_ip}", self.client_ip.encode()))
                    await self.writer.drain()
                except (ConnectionError, RuntimeError):
                    pass  # whether a write to a closing peer fails is timing; not recorded
        elif step.kind.rstrip("*") in streams:
            kind = step.kind.rstrip("*")
            wanted = step.data.replace(b"{client_ip}", self.client_ip.encode())
            if kind == "S":
                await self._read_until(lambda: self._settled(wanted), self.dlg.timeout)
            timeout = 0 if kind == "S" else self.dlg.timeout  # S: has been read above
            problem = await streams[kind].expect(wanted, timeout)
            if not problem and step.kind.endswith("*"):
                problem = await self._skip_line(streams[kind], kind == "S")
            self.last_match = loop.time()
            if problem:
                self._fail(step, "%s: %s" % (step.kind, problem))
        elif step.kind == "wait":
            await self._read_until(lambda: False, step.low)
        elif step.kind == "took":
            took = self.last_match - self.last_send
            if not step.low <= took <= step.high:
                self._fail(step, "took %.2fs, expected %s..%s" % (took, step.low, step.high))
        elif step.kind == "eof-expected":
            if await self._read_until(lambda: self.eof, self.dlg.timeout):
                self.last_match = loop.time()
            else:
                self.client.mark("no eof")
                self._fail(step, "the proxy did not close the connection")
        elif step.kind == "starttls":
            await self._starttls(step)
        elif step.kind == "shutdown":
            if not self.eof and self.writer.can_write_eof():
                self.writer.write_eof()
        elif step.kind == "close":
            await self._read_until(lambda: self.eof, DRAIN_SECONDS)
            self.writer.close()
            self.eof = True

    async def _skip_line(self, stream: Recorder, is_client: bool) -> str | None:
        """For `X*: PREFIX`: consume anything up to and including the next LF."""
        has_lf = lambda: b"\n" in stream.data[stream.cursor :]  # noqa: E731
        if is_client:
            await self._read_until(has_lf, self.dlg.timeout)
        if not await stream.wait_until(has_lf, 0 if is_client else self.dlg.timeout):
            return "no end of line after the prefix"
        stream.cursor = stream.data.index(b"\n", stream.cursor) + 1
        return None

    def _settled(self, wanted: bytes) -> bool:
        """Enough bytes to compare with `wanted`, or already a byte that differs."""
        got = bytes(self.client.data[self.client.cursor : self.client.cursor + len(wanted)])
        return len(got) == len(wanted) or not wanted.startswith(got)

    def _fail(self, step: Step, text: str) -> None:
        self.failures.append("line %d: %s" % (step.line, text))

    async def _read_until(self, done, timeout: float) -> bool:
        """Read from the proxy into the client recorder until done() or timeout or EOF."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done() and not self.eof:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                chunk = await asyncio.wait_for(self.reader.read(65536), remaining)
            except asyncio.TimeoutError:
                break
            except (ConnectionError, ssl.SSLError, OSError):
                chunk = b""  # a reset is just an abrupt close for our purposes
            if not chunk:
                self.eof = True
                self.client.mark("eof")
                break
            self.client.add(chunk)
        return done()

    def _tls_context(self) -> ssl.SSLContext:
        cert = self.target.client_certs[self.dlg.client_cert] if self.dlg.client_cert else None
        return client_tls_context(cert)

    async def _starttls(self, step: Step) -> None:
        if self.eof:
            self._fail(step, "starttls on a closed connection")
            return
        try:
            await asyncio.wait_for(self.writer.start_tls(self._tls_context()), self.dlg.timeout)
            self.client.mark("tls")
        except (OSError, ssl.SSLError, asyncio.TimeoutError, ConnectionError) as err:
            self.client.mark("tls failed")
            self._fail(step, "TLS handshake failed: %s" % err)
            self.eof = True


__all__ = ["Dialogue", "DialogueError", "Outcome", "Target", "escape", "parse_dialogue", "play"]
