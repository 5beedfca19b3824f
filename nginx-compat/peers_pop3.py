"""The scripted POP3 backend of the differential suite (see README "Backend options (POP3)")."""

from peers import ScriptedBackend, _Conn


class Pop3Backend(ScriptedBackend):
    """POP3 server: greets, takes nginx's USER/PASS, then serves STAT/LIST/RETR/QUIT.

    Options: greeting, user (reply to USER), pass (reply to PASS; the words ok/err/long are
    shorthands), after (`serve` or an action run right after the PASS reply).
    """

    defaults = {
        "greeting": "+OK backend ready\\r\\n",
        "user": "+OK\\r\\n",
        "pass": "ok",
        "after": "serve",
    }
    pass_shorthands = {
        "ok": "+OK Logged in.\\r\\n",
        "err": "-ERR [AUTH] Authentication failed.\\r\\n",
        "long": "+OK \\{5000*x}\\r\\n",
    }
    message = b"Subject: test\r\n\r\n..dot-stuffed line\r\nhello\r\n"

    def __init__(self, script: dict[str, str]) -> None:
        super().__init__(script)
        reply = self.script["pass"]
        self.script["pass"] = self.pass_shorthands.get(reply, reply)

    async def converse(self, conn: _Conn) -> None:
        if not await self.act(conn, "greeting"):
            return
        logged_in = False
        while True:
            line = await conn.read_line()
            if line is None:
                return
            words = line.split()
            verb = words[0].upper() if words else b""
            if not logged_in and verb in (b"USER", b"PASS"):
                if not await self.act(conn, verb.decode().lower()):
                    return
                if verb == b"PASS":
                    logged_in = True
                    if self.script["after"] != "serve" and not await self.act(conn, "after"):
                        return
                continue
            if not await self._serve(conn, verb, words[1:]):
                return

    async def _serve(self, conn: _Conn, verb: bytes, args: list[bytes]) -> bool:
        size = len(self.message)
        replies = {
            b"STAT": b"+OK 1 %d\r\n" % size,
            b"LIST": b"+OK 1 messages\r\n1 %d\r\n.\r\n" % size,
            b"RETR": b"+OK %d octets\r\n%s.\r\n" % (size, self.message),
            b"QUIT": b"+OK backend logging out\r\n",
        }
        conn.writer.write(replies.get(verb, b"+OK " + verb + b" done\r\n"))
        await conn.writer.drain()
        if verb == b"QUIT":
            conn.hung_up = True
            self.recorder.mark("backend closed")
            return False
        return True
