#!/usr/bin/env python3
"""Differential suite: play every dialogue against the real nginx and against mailproxy.

For each dialogue, three streams are compared byte for byte: what the client received, what
the backend received, what the auth_http server received. A difference is a failure unless
docs/nginx-differences.md carries `<!-- compat: DIALOGUE-NAME -->` under the heading that
explains it. See README.md for the dialogue format.

    python3 nginx-compat/run.py [--only nginx] [--filter SUBSTR] [--mailproxy PATH] [-v]
"""

import argparse
import asyncio
import difflib
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dialogue import Dialogue, DialogueError, Outcome, Target, parse_dialogue, play  # noqa: E402
from peers import AuthServer  # noqa: E402
from pki import make_pki  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
NGINX = "/usr/sbin/nginx"
DIFFERENCES_DOC = REPO / "docs" / "nginx-differences.md"
MARKER = re.compile(r"<!--\s*compat:\s*([\w.+-]+)\s*-->")
PARALLEL = 24
# How often a failed dialogue is played again, alone, before it counts as failed.
RETRIES = 2
STREAMS = ("client", "backend", "auth")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["nginx"], help="validate the dialogues against nginx alone")
    parser.add_argument("--filter", default="", help="run only dialogues whose name contains SUBSTR")
    parser.add_argument("--mailproxy", default=str(REPO / "target" / "release" / "mailproxy"))
    parser.add_argument("-v", "--verbose", action="store_true", help="print every stream")
    args = parser.parse_args()
    try:
        dialogues = load_dialogues(args.filter)
    except DialogueError as err:
        print("bad dialogue: %s" % err)
        return 2
    if not dialogues:
        print("no dialogue matches %r" % args.filter)
        return 2
    if not args.only and not os.access(args.mailproxy, os.X_OK):
        print("mailproxy not found at %s (build it, pass --mailproxy, or use --only nginx)" % args.mailproxy)
        return 2
    return asyncio.run(Suite(args, dialogues).run())


def load_dialogues(substring: str) -> list[Dialogue]:
    paths = sorted((HERE / "dialogues").rglob("*.txt"))
    dialogues = [parse_dialogue(p) for p in paths if substring in p.stem]
    names = [d.name for d in dialogues]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise DialogueError("duplicate dialogue names: %s" % ", ".join(sorted(duplicates)))
    return dialogues


def documented_differences() -> set[str]:
    if not DIFFERENCES_DOC.exists():
        return set()
    return set(MARKER.findall(DIFFERENCES_DOC.read_text()))


@dataclass
class Proxy:
    """One proxy under test: its config, process, log and peers."""

    label: str
    command: list[str]
    directory: Path
    target: Target
    process: subprocess.Popen | None = None

    @property
    def error_log(self) -> Path:
        return self.directory / "error.log"

    def start(self) -> None:
        output = open(self.directory / "output.log", "wb")
        self.process = subprocess.Popen(self.command, stdout=output, stderr=subprocess.STDOUT, cwd=self.directory)

    async def wait_listening(self, timeout: float) -> str | None:
        """None when every port listens; else why not."""
        deadline = time.monotonic() + timeout
        wanted = set(self.target.ports.values())
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return "%s exited with status %s" % (self.label, self.process.returncode)
            if wanted <= listening_ports():
                return None
            await asyncio.sleep(0.05)
        return "%s is not listening on every port after %.0fs" % (self.label, timeout)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def tail(self, lines: int = 40) -> str:
        parts = []
        for name in ("output.log", "error.log"):
            path = self.directory / name
            if path.exists():
                text = [line[:300] for line in path.read_text(errors="replace").splitlines()[-lines:]]
                parts.append("--- %s %s (last %d lines)\n%s" % (self.label, path, len(text), "\n".join(text)))
        return "\n".join(parts)


def listening_ports() -> set[int]:
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A":  # TCP_LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports; all held open together so none is handed out twice."""
    sockets = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def make_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=mx.test",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


def render_config(template: str, values: dict[str, str], ports: dict[str, int]) -> str:
    text = re.sub(r"@@port:(\w+)@@", lambda m: str(ports[m.group(1)]), template)
    for name, value in values.items():
        text = text.replace("@@%s@@" % name, value)
    return text


class Suite:
    def __init__(self, args, dialogues: list[Dialogue]) -> None:
        self.args = args
        self.dialogues = dialogues
        self.only_nginx = args.only == "nginx"
        self.documented = documented_differences()
        self.tmp = Path(tempfile.mkdtemp(prefix="nginx-compat-"))
        self.proxies: list[Proxy] = []

    async def run(self) -> int:
        started = time.monotonic()
        refused = socket.socket()  # bound, never listening: connections to it are refused
        refused.bind(("127.0.0.1", 0))
        try:
            problem = await self._start_proxies(refused.getsockname()[1])
            if problem:
                print(problem)
                for proxy in self.proxies:
                    print(proxy.tail())
                return 2
            results = await self._play_all()
            results = await self._retry_failures(results)
        finally:
            for proxy in self.proxies:
                proxy.stop()
                await proxy.target.auth.stop()
            refused.close()
        return self._report(results, time.monotonic() - started)

    async def _start_proxies(self, refused_port: int) -> str | None:
        template = (HERE / "mail.conf.in").read_text()
        variants = sorted(set(re.findall(r"@@port:(\w+)@@", template)))
        unknown = {d.server for d in self.dialogues} - set(variants)
        if unknown:
            return "dialogues name unknown server blocks: %s" % ", ".join(sorted(unknown))
        cert, key = make_certificate(self.tmp)
        client_certs = make_pki(self.tmp / "pki")
        labels = ["nginx"] if self.only_nginx else ["nginx", "mailproxy"]
        all_ports = free_ports(len(variants) * len(labels))
        for index, label in enumerate(labels):
            directory = self.tmp / label
            directory.mkdir()
            auth = AuthServer()
            await auth.start()
            ports = dict(zip(variants, all_ports[index * len(variants) :]))
            values = {"dir": str(directory), "cert": str(cert), "key": str(key),
                      "auth": str(auth.port), "refused": str(refused_port),
                      "ca": str(self.tmp / "pki" / "ca.pem")}
            conf = directory / (label + ".conf")
            conf.write_text(render_config(template, values, ports))
            binary = NGINX if label == "nginx" else str(Path(self.args.mailproxy).resolve())
            command = [binary, "-c", str(conf)] + (["-p", str(directory) + "/"] if label == "nginx" else [])
            target = Target(label, ports, auth, refused_port, client_certs)
            self.proxies.append(Proxy(label, command, directory, target))
        for proxy in self.proxies:
            proxy.start()
        for proxy in self.proxies:
            problem = await proxy.wait_listening(10)
            if problem:
                return problem
        return None

    async def _play_all(self) -> list[tuple[Dialogue, list[Outcome]]]:
        gate = asyncio.Semaphore(PARALLEL)

        async def one(index: int, dlg: Dialogue) -> tuple[Dialogue, list[Outcome]]:
            client_ip = "127.1.%d.%d" % (index // 200, index % 200 + 1)
            async with gate:
                outcomes = await asyncio.gather(*(play(dlg, p.target, client_ip) for p in self.proxies))
            return dlg, list(outcomes)

        return await asyncio.gather(*(one(i, d) for i, d in enumerate(self.dialogues)))

    def _ok(self, dlg: Dialogue, outcomes: list[Outcome]) -> bool:
        if outcomes[0].failures:
            return False
        if self.only_nginx:
            return True
        return self._compare(dlg, outcomes[0], outcomes[1])[0] in ("equal", "documented-difference")

    async def _retry_failures(self, results):
        """Plays each failed dialogue again, alone, up to RETRIES times. Some reference
        behaviour depends on timing (nginx resets a connection with unread input, and the
        client then loses replies already sent), so a loaded machine can fail a dialogue
        that passes on an idle one. A dialogue that passes on a retry is reported as flaky
        by name; one that fails every time fails the run."""
        self.flaky = []
        retried = list(results)
        next_index = len(self.dialogues)
        for position, (dlg, outcomes) in enumerate(results):
            for _ in range(RETRIES):
                if self._ok(dlg, outcomes):
                    break
                client_ip = "127.1.%d.%d" % (next_index // 200, next_index % 200 + 1)
                next_index += 1
                outcomes = list(await asyncio.gather(*(play(dlg, p.target, client_ip) for p in self.proxies)))
                if self._ok(dlg, outcomes):
                    self.flaky.append(dlg.name)
            retried[position] = (dlg, outcomes)
        return retried

    def _report(self, results, seconds: float) -> int:
        passed = failed = 0
        rows, details = [], []
        for dlg, outcomes in results:
            reference = outcomes[0]
            expectations = "ok" if not reference.failures else "FAIL"
            verdict, diff = ("-", "") if self.only_nginx else self._compare(dlg, reference, outcomes[1])
            ok = not reference.failures and verdict in ("-", "equal", "documented-difference")
            passed, failed = passed + ok, failed + (not ok)
            rows.append((dlg.name, expectations, verdict, "%.1fs" % reference.seconds))
            if not ok or self.args.verbose:
                details.append(self._details(dlg, outcomes, diff))
        width = max(len(r[0]) for r in rows)
        print("%-*s | %-13s | %-21s | %s" % (width, "dialogue", "nginx==expect", "mailproxy vs nginx", "time"))
        print("-" * (width + 50))
        for row in rows:
            print("%-*s | %-13s | %-21s | %s" % ((width,) + row))
        for text in details:
            print(text)
        if failed:
            for proxy in self.proxies:
                print(proxy.tail())
        unrouted = sum(len(p.target.auth.unrouted) for p in self.proxies)
        if unrouted:
            print("warning: %d auth request(s) matched no running dialogue" % unrouted)
        for name in self.flaky:
            print("flaky: %s failed, then passed when played again alone" % name)
        print("logs and configs: %s" % self.tmp)
        print("run time %.1fs" % seconds)
        print("%d passed, %d failed" % (passed, failed))
        return 1 if failed else 0

    def _compare(self, dlg: Dialogue, nginx: Outcome, mailproxy: Outcome) -> tuple[str, str]:
        diff = []
        for stream in STREAMS:
            diff += difflib.unified_diff(
                nginx.streams[stream], mailproxy.streams[stream],
                "nginx/%s" % stream, "mailproxy/%s" % stream, lineterm="",
            )
        if not diff:
            return "equal", ""
        verdict = "documented-difference" if dlg.name in self.documented else "DIFFERENT"
        return verdict, "\n".join(diff)

    def _details(self, dlg: Dialogue, outcomes: list[Outcome], diff: str) -> str:
        out = ["", "=== %s (%s): %s" % (dlg.name, dlg.path.relative_to(HERE), dlg.title)]
        for proxy, outcome in zip(self.proxies, outcomes):
            for failure in outcome.failures:
                out.append("  %s expectation: %s" % (proxy.label, failure))
        if diff:
            out.append(diff)
        if self.args.verbose:
            for stream in STREAMS:
                out.append("  --- nginx %s stream" % stream)
                out += ["    " + line for line in outcomes[0].streams[stream]]
        return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
