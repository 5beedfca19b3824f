"""Byte escaping and stream recording shared by the dialogue runner and the scripted peers.

Everything the suite compares is a byte stream; these helpers turn the readable escaped text of
the dialogue files into bytes and recorded bytes back into readable, diffable text lines.
"""

import asyncio
import re

# `\{N*TEXT}` repeats TEXT N times: long lines stay readable in dialogue files and in diffs.
_REPEAT = re.compile(rb"\\\{(\d+)\*([^}]*)\}")
_SIMPLE = {b"r": b"\r", b"n": b"\n", b"t": b"\t", b"\\": b"\\", b"0": b"\0"}


def unescape(text: str) -> bytes:
    """Decode the escapes of the dialogue format: \\r \\n \\t \\\\ \\0 \\xHH and \\{N*TEXT}."""
    raw = text.encode("utf-8")
    raw = _REPEAT.sub(lambda m: _unescape_plain(m.group(2)) * int(m.group(1)), raw)
    return _unescape_plain(raw)


def _unescape_plain(raw: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(raw):
        byte = raw[i : i + 1]
        if byte != b"\\" or i + 1 >= len(raw):
            out += byte
            i += 1
            continue
        code = raw[i + 1 : i + 2]
        if code in _SIMPLE:
            out += _SIMPLE[code]
            i += 2
        elif code == b"x" and re.fullmatch(rb"[0-9a-fA-F]{2}", raw[i + 2 : i + 4]):
            out.append(int(raw[i + 2 : i + 4], 16))
            i += 4
        else:
            # An unknown escape stays as written, so a stray backslash is never lost silently.
            out += byte
            i += 1
    return bytes(out)


def escape(data: bytes) -> str:
    """Inverse of unescape() for display; runs of 16+ equal bytes become \\{N*c}."""
    out = []
    i = 0
    while i < len(data):
        run = 1
        while i + run < len(data) and data[i + run] == data[i]:
            run += 1
        piece = _escape_byte(data[i])
        if run >= 16:
            out.append("\\{%d*%s}" % (run, piece))
        else:
            out.append(piece * run)
        i += run
    return "".join(out)


def _escape_byte(b: int) -> str:
    if b == 0x5C:
        return "\\\\"
    if b == 0x0D:
        return "\\r"
    if b == 0x0A:
        return "\\n"
    if b == 0x09:
        return "\\t"
    if 0x20 <= b < 0x7F:
        return chr(b)
    return "\\x%02x" % b


class Recorder:
    """One recorded stream: the raw bytes in arrival order plus event marks between them.

    Marks (`[eof]`, `[connection 2]`, `[tls]`) are part of what is compared, but the raw bytes
    alone are what `S:`/`A:`/`B:` expectations consume, through a cursor.
    """

    def __init__(self) -> None:
        self.data = bytearray()
        self.marks: list[tuple[int, str]] = []
        self.cursor = 0
        self._changed = asyncio.Event()

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        self._changed.set()

    def mark(self, text: str) -> None:
        self.marks.append((len(self.data), text))
        self._changed.set()

    def has_mark(self, text: str) -> bool:
        return any(m == text for _, m in self.marks)

    async def wait_until(self, predicate, timeout: float) -> bool:
        """Wait until predicate() holds or timeout expires; returns its final value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                return predicate()
        return True

    async def expect(self, wanted: bytes, timeout: float) -> str | None:
        """Consume `wanted` at the cursor; None on success, else a description of the mismatch."""
        start = self.cursor

        def settled() -> bool:
            got = bytes(self.data[start : start + len(wanted)])
            return len(got) == len(wanted) or not wanted.startswith(got)

        await self.wait_until(settled, timeout)
        got = bytes(self.data[start : start + len(wanted)])
        if got == wanted:
            self.cursor = start + len(wanted)
            return None
        # On a mismatch consume what was compared, so later steps see the following bytes.
        self.cursor = start + len(got)
        return "expected %s, got %s" % (escape(wanted), escape(got) or "(nothing)")

    def render(self) -> list[str]:
        """Text lines for comparison and diffs: bytes split after each LF, marks on own lines."""
        lines: list[str] = []
        pos = 0
        for at, text in self.marks + [(len(self.data), None)]:
            lines += _split_lines(bytes(self.data[pos:at]))
            pos = at
            if text is not None:
                lines.append("[%s]" % text)
        return lines


def _split_lines(data: bytes) -> list[str]:
    return [escape(part) for part in data.splitlines(keepends=True)]
