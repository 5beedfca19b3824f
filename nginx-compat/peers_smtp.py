"""The scripted SMTP backend for the differential suite (registered in peers.BACKENDS)."""

from peers import ScriptedBackend, _Conn


class SmtpBackend(ScriptedBackend):
    """A Postfix-like SMTP server, one scripted reply per kind of command.

    Options (escaped bytes, or `stall` / `close`): greeting, ehlo, helo, xclient (reply to
    XCLIENT), plain (reply to AUTH PLAIN), auth (to the last AUTH LOGIN step and any other AUTH),
    mail, rcpt, data (reply to the message after DATA). AUTH LOGIN gets the two `334` prompts first. After login every
    other command `X` gets `250 2.0.0 backend got X`; QUIT gets `221` and a close.
    """

    defaults = {
        "greeting": "220 backend ESMTP\\r\\n",
        "ehlo": "250-backend\\r\\n250-PIPELINING\\r\\n250 AUTH PLAIN LOGIN\\r\\n",
        "helo": "250 backend\\r\\n",
        "xclient": "220 backend ESMTP\\r\\n",
        "auth": "235 2.7.0 Authentication successful\\r\\n",
        "plain": "235 2.7.0 Authentication successful\\r\\n",
        "login_user": "334 VXNlcm5hbWU6\\r\\n",
        "login_password": "334 UGFzc3dvcmQ6\\r\\n",
        "mail": "250 2.1.0 Ok\\r\\n",
        "rcpt": "250 2.1.5 Ok\\r\\n",
        "data": "250 2.0.0 Ok: queued\\r\\n",
    }
    verbs = {b"EHLO": "ehlo", b"HELO": "helo", b"XCLIENT": "xclient", b"MAIL": "mail", b"RCPT": "rcpt"}

    async def converse(self, conn: _Conn) -> None:
        if not await self.act(conn, "greeting"):
            return
        login_steps: list[str] = []
        while True:
            line = await conn.read_line()
            if line is None:
                return
            if login_steps:
                if not await self.act(conn, login_steps.pop(0)):
                    return
                continue
            words = line.split()
            verb = words[0].upper() if words else b""
            mechanism = words[1].upper() if len(words) > 1 else b""
            if verb == b"AUTH" and mechanism == b"LOGIN":
                login_steps = ["login_password", "auth"]
                option = "login_user"
            elif verb == b"AUTH" and mechanism == b"PLAIN":
                option = "plain"
            elif verb == b"AUTH":
                option = "auth"
            elif verb in self.verbs:
                option = self.verbs[verb]
            elif verb == b"DATA":
                if not await self._data(conn):
                    return
                continue
            else:
                if not await self._other(conn, verb):
                    return
                continue
            if not await self.act(conn, option):
                return

    async def _data(self, conn: _Conn) -> bool:
        conn.writer.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
        await conn.writer.drain()
        while True:
            line = await conn.read_line()
            if line is None:
                return False
            if line in (b".\r\n", b".\n"):
                return await self.act(conn, "data")

    async def _other(self, conn: _Conn, verb: bytes) -> bool:
        if verb == b"QUIT":
            conn.writer.write(b"221 2.0.0 Bye\r\n")
            await conn.writer.drain()
            conn.hung_up = True
            self.recorder.mark("backend closed")
            return False
        conn.writer.write(b"250 2.0.0 backend got " + verb + b"\r\n")
        await conn.writer.drain()
        return True
