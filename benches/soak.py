#!/usr/bin/env python3
"""A soak of mailproxy: mixed IMAP/POP3/SMTP load with injected faults, then a report.

    python3 benches/soak.py [--minutes 30] [--report docs/soak.md]   (run via benches/soak.sh)

Backends are the real ones of tests/real: a private Dovecot (IMAP + POP3) and a private
Postfix (SMTP, every message put on hold). `mailproxy-auth` routes each protocol to its
backend. mailproxy runs with 2 workers, IMAP over implicit TLS and STARTTLS, POP3 with STLS and
SMTP submission with STARTTLS, all on loopback.

Client loops (threads) run for the whole duration:
  IMAP  login, APPEND a random 1 KiB-1 MiB message, UID FETCH it back, compare SHA-256,
        UID EXPUNGE it, logout (half the loops over implicit TLS, half over STARTTLS);
  POP3  STLS, USER/PASS, STAT, RETR a random one of the messages seeded into Bob's INBOX,
        compare its SHA-256 with the seeded one, QUIT;
  SMTP  STARTTLS, AUTH, send a random 1-64 KiB message; Postfix must answer `250 ... queued as
        ID`; the held message's body is read back with postcat, hashed and compared, then
        deleted from the queue.

Every minute, while the load runs: a SIGHUP reload (at +15 s) and one fault (at +45 s), in
rotation: SIGKILL of one worker, the auth server stopped for 5 s, Dovecot restarted. A client
error is "expected" only if it happens inside a fault window (fault start to fault end plus a
few seconds of grace); every other error -- including any during a reload -- is unexpected.
Every 5 s a sampler records the RSS and open fds of the master and its workers, established
client connections on the proxy's ports, and the counters.

Every process started is stopped on exit (also on failure, Ctrl-C or SIGTERM).
"""

import argparse
import base64
import hashlib
import imaplib
import os
import platform
import poplib
import random
import re
import shutil
import signal
import smtplib
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "real"))
sys.path.insert(0, str(REPO / "tests" / "real" / "dovecot"))

import harness  # noqa: E402
import postfix  # noqa: E402
from dovecot import PrivateDovecot, wait_for_port  # noqa: E402

ALICE = ("alice", "secret")
BOB = ("bob", 'p w"d')
POP3_SEED = 8
GRACE = 3.0  # seconds after a fault ends during which errors still count as caused by it
TIMEOUT = 30  # client socket timeout

CONFIG = """\
# Written by benches/soak.py
daemon off;
worker_processes 2;
pid {state}/proxy.pid;
error_log {state}/error.log info;
events {{ worker_connections 1024; }}
mail {{
    server_name localhost;
    auth_http 127.0.0.1:{auth}/auth;
    auth_http_timeout 10s;
    proxy_pass_error_message on;
    imap_capabilities IMAP4rev1 LITERAL+ SASL-IR IDLE NAMESPACE UIDPLUS;
    imap_auth plain login;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SOAK:10m;
    server {{ listen 127.0.0.1:{imaps} ssl; protocol imap; }}
    server {{ listen 127.0.0.1:{imap}; protocol imap; starttls only; }}
    server {{ listen 127.0.0.1:{pop3}; protocol pop3; starttls only; }}
    server {{ listen 127.0.0.1:{smtp}; protocol smtp; starttls only; }}
}}
"""


def client_tls():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def random_message(rng, size, subject):
    """Headers plus a base64 body of random bytes in 76-character CRLF lines, about `size` bytes."""
    raw = os.urandom(max(1, size * 57 // 78))
    body = base64.encodebytes(raw).replace(b"\n", b"\r\n")
    head = (f"From: Soak <soak@example.org>\r\nTo: Alice <alice@example.com>\r\n"
            f"Subject: {subject}\r\nMessage-ID: <{rng.getrandbits(64):x}@soak.test>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n").encode()
    return head, body


def sha(data):
    return hashlib.sha256(data).hexdigest()


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = Counter()  # kind -> operations
        self.bytes = Counter()  # kind -> bytes relayed and hash-verified
        self.errors = []  # (t, kind, text)

    def success(self, kind, nbytes):
        with self.lock:
            self.ok[kind] += 1
            self.bytes[kind] += nbytes

    def error(self, kind, exc):
        with self.lock:
            self.errors.append((time.monotonic(), kind, f"{type(exc).__name__}: {exc}"[:300]))


class Soak:
    def __init__(self, args, root):
        self.args = args
        self.root = root
        self.children = harness.Children()
        self.stats = Stats()
        self.stop = threading.Event()
        self.windows = []  # (fault kind, start, end)
        self.reloads = []  # monotonic times of SIGHUP
        self.samples = []  # dicts
        self.dovecot = None
        self.postfix = None
        self.auth = None
        self.proxy = None
        self.pop3_hashes = {}

    # --- setup ------------------------------------------------------------------------------

    def start_auth(self):
        self.auth = self.children.start("mailproxy-auth", [self.args.auth_bin, "-c", str(self.auth_conf)],
                                        self.root / "auth.log")
        wait_for_port(self.auth_port, time.monotonic() + 15, self.auth, "mailproxy-auth")

    def setup(self):
        self.dovecot = PrivateDovecot(self.root / "dovecot", harness.free_port(), harness.free_port())
        self.dovecot.start()
        self.postfix = postfix.PrivatePostfix(self.root / "postfix", harness.free_port())
        self.postfix.start(self.children, wait_for_port)
        # Bob's INBOX: the messages POP3 reads (IMAP only ever touches Alice's).
        rng = random.Random(11)
        seed = {}
        for i in range(POP3_SEED):
            head, body = random_message(rng, rng.randint(1024, 1024 * 1024), f"pop3 seed {i}")
            seed[f"seed{i}"] = head + body
        harness.seed_mailbox(self.dovecot.imap_port, *BOB, seed)
        self.pop3_hashes = {sha(m): len(m) for m in seed.values()}
        self.auth_port = harness.free_port()
        self.auth_conf = self.root / "auth.toml"
        self.auth_conf.write_text(
            f'listen = "127.0.0.1:{self.auth_port}"\n\n[backend]\n'
            f'imap = "127.0.0.1:{self.dovecot.imap_port}"\npop3 = "127.0.0.1:{self.dovecot.pop3_port}"\n'
            f'smtp = "127.0.0.1:{self.postfix.port}"\n')
        self.start_auth()
        cert, key = harness.make_certificate(self.root)
        self.ports = {name: harness.free_port() for name in ("imaps", "imap", "pop3", "smtp")}
        self.state = self.root / "mailproxy"
        self.state.mkdir()
        conf = self.state / "mail.conf"
        conf.write_text(CONFIG.format(state=self.state, auth=self.auth_port, cert=cert, key=key, **self.ports))
        self.proxy = self.children.start("mailproxy", [self.args.proxy_bin, "-c", str(conf)],
                                         self.state / "proxy.out")
        for port in self.ports.values():
            wait_for_port(port, time.monotonic() + 20, self.proxy, "mailproxy")

    # --- client loops -----------------------------------------------------------------------

    def imap_once(self, rng, starttls):
        if starttls:
            c = imaplib.IMAP4("127.0.0.1", self.ports["imap"], timeout=TIMEOUT)
            c.starttls(ssl_context=client_tls())
        else:
            c = imaplib.IMAP4_SSL("127.0.0.1", self.ports["imaps"], ssl_context=client_tls(), timeout=TIMEOUT)
        try:
            c.login(*ALICE)
            typ, _ = c.select("INBOX")
            assert typ == "OK", "SELECT failed"
            head, body = random_message(rng, rng.randint(1024, 1024 * 1024), "imap soak")
            msg = head + body
            typ, resp = c.append("INBOX", None, None, msg)
            assert typ == "OK", f"APPEND: {resp}"
            uid = re.search(rb"APPENDUID \d+ (\d+)", resp[0]).group(1).decode()
            typ, data = c.uid("FETCH", uid, "(BODY.PEEK[])")
            # Other clients' expunges and flag changes arrive as untagged responses too: take
            # the literal of the one that names our UID.
            got = next((d[1] for d in data if isinstance(d, tuple) and re.search(rb"UID %s\b" % uid.encode(), d[0])), None)
            assert typ == "OK" and got is not None, f"FETCH: {typ} {data!r:.200}"
            if sha(got) != sha(msg):
                raise AssertionError(f"IMAP hash mismatch: {len(got)} bytes back for {len(msg)}")
            typ, _ = c.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)")
            assert typ == "OK", "STORE failed"
            typ, _ = c.uid("EXPUNGE", uid)
            assert typ == "OK", "UID EXPUNGE failed"
            c.logout()
        finally:
            try:
                c.shutdown()
            except Exception:
                pass
        return 2 * len(msg)  # up (APPEND) and down (FETCH), both verified

    def pop3_once(self, rng):
        p = poplib.POP3("127.0.0.1", self.ports["pop3"], timeout=TIMEOUT)
        try:
            p.stls(context=client_tls())
            p.user(BOB[0])
            p.pass_(BOB[1])
            count, _ = p.stat()
            if count != POP3_SEED:
                raise AssertionError(f"POP3 STAT says {count} messages, seeded {POP3_SEED}")
            _, lines, _ = p.retr(rng.randint(1, count))
            data = b"\r\n".join(lines) + b"\r\n"
            if sha(data) not in self.pop3_hashes:
                raise AssertionError(f"POP3 hash mismatch ({len(data)} bytes)")
            p.quit()
        finally:
            try:
                p.close()
            except Exception:
                pass
        return len(data)

    def smtp_once(self, rng):
        head, body = random_message(rng, rng.randint(1024, 64 * 1024), "smtp soak")
        with smtplib.SMTP("127.0.0.1", self.ports["smtp"], local_hostname="soak.client", timeout=TIMEOUT) as s:
            s.starttls(context=client_tls())
            s.login(*ALICE)
            code, resp = s.mail("alice@example.org")
            assert code == 250, f"MAIL: {code} {resp}"
            code, resp = s.rcpt("rcpt@example.net")
            assert code in (250, 251), f"RCPT: {code} {resp}"
            code, resp = s.data(head + body)
            m = re.search(rb"queued as ([0-9A-F]+)", resp)
            if code != 250 or not m:
                raise AssertionError(f"DATA: {code} {resp!r}")
            s.quit()
        qid = m.group(1).decode()
        conf = str(self.postfix.conf)
        out = subprocess.run(["postcat", "-c", conf, "-b", "-q", qid], capture_output=True, timeout=30).stdout
        # postcat -b prints the empty line that ends the headers, then the body, with LF line
        # ends; the message went out with CRLF.
        if sha(out) != sha(b"\n" + body.replace(b"\r\n", b"\n")):
            raise AssertionError(f"SMTP body of {qid} differs in Postfix's queue ({len(out)} bytes)")
        subprocess.run(["postsuper", "-c", conf, "-d", qid], capture_output=True, timeout=30)
        return len(head) + len(body)

    def loop(self, kind, index):
        rng = random.Random(index * 7919 + int(time.time()))
        while not self.stop.is_set():
            try:
                if kind == "imap":
                    n = self.imap_once(rng, starttls=index % 2 == 1)
                elif kind == "pop3":
                    n = self.pop3_once(rng)
                else:
                    n = self.smtp_once(rng)
                self.stats.success(kind, n)
            except Exception as exc:  # noqa: BLE001 (every failure is recorded and classified)
                if self.stop.is_set() and time.monotonic() > self.end:
                    break  # torn down by the end of the run
                self.stats.error(kind, exc)
                self.stop.wait(0.5)
            self.stop.wait(rng.uniform(0.05, 0.3))

    # --- faults -----------------------------------------------------------------------------

    def workers(self):
        pid = self.proxy.pid
        try:
            return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            return []

    def reload(self):
        self.reloads.append(time.monotonic())
        os.kill(self.proxy.pid, signal.SIGHUP)

    def fault(self, kind):
        start = time.monotonic()
        if kind == "kill worker":
            workers = self.workers()
            os.kill(random.choice(workers), signal.SIGKILL)
        elif kind == "auth down 5 s":
            self.children.stop(self.auth)
            time.sleep(5)
            self.start_auth()
        elif kind == "dovecot restart":
            self.dovecot.stop()
            self.dovecot.start()
        self.windows.append((kind, start, time.monotonic() + GRACE))

    # --- sampling ---------------------------------------------------------------------------

    def established(self):
        ports = {f"{p:04X}" for p in self.ports.values()}
        n = 0
        try:
            with open("/proc/net/tcp") as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "01" and fields[1].rsplit(":", 1)[1] in ports:
                        n += 1
        except OSError:
            pass
        return n

    def sample(self, t0):
        pids = [self.proxy.pid] + self.workers()
        rss = fds = 0
        for pid in pids:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                rss += int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))
                fds += len(os.listdir(f"/proc/{pid}/fd"))
            except (OSError, AttributeError):
                pass
        with self.stats.lock:
            ok = sum(self.stats.ok.values())
            errors = len(self.stats.errors)
        self.samples.append({"t": time.monotonic() - t0, "rss_kib": rss, "fds": fds, "procs": len(pids),
                             "sessions": self.established(), "ok": ok, "errors": errors})

    def sampler(self, t0):
        while not self.stop.is_set():
            self.sample(t0)
            self.stop.wait(5)

    # --- the run ----------------------------------------------------------------------------

    def run(self):
        a = self.args
        duration = a.minutes * 60
        t0 = time.monotonic()
        self.t0 = t0
        self.end = t0 + duration
        threads = [threading.Thread(target=self.sampler, args=(t0,), daemon=True)]
        for kind, n in (("imap", a.imap), ("pop3", a.pop3), ("smtp", a.smtp)):
            threads += [threading.Thread(target=self.loop, args=(kind, i), daemon=True) for i in range(n)]
        for t in threads:
            t.start()
        rotation = ["kill worker", "auth down 5 s", "dovecot restart"]
        events = []
        for minute in range(a.minutes):
            events.append((t0 + 60 * minute + 15, "reload", None))
            events.append((t0 + 60 * minute + 45, "fault", rotation[minute % len(rotation)]))
        for when, what, kind in events:
            while time.monotonic() < when:
                if self.proxy.poll() is not None:
                    raise RuntimeError(f"mailproxy exited with {self.proxy.returncode}")
                time.sleep(min(0.5, max(0.0, when - time.monotonic())))
            print(f"[{time.monotonic() - t0:7.1f}s] {what} {kind or ''}  ok={sum(self.stats.ok.values())} "
                  f"errors={len(self.stats.errors)}", flush=True)
            if what == "reload":
                self.reload()
            else:
                self.fault(kind)
        while time.monotonic() < self.end:
            time.sleep(0.5)
        self.stop.set()
        for t in threads:
            t.join(timeout=TIMEOUT + 10)
        self.sample(t0)
        self.elapsed = time.monotonic() - t0

    def teardown(self):
        self.stop.set()
        if self.postfix is not None:
            self.postfix.stop()
        if self.dovecot is not None:
            self.dovecot.stop()
        self.children.stop_all()

    # --- report -----------------------------------------------------------------------------

    def classify(self):
        expected = defaultdict(list)
        unexpected = []
        for t, kind, text in self.stats.errors:
            fault = next((w[0] for w in self.windows if w[1] <= t <= w[2]), None)
            if fault:
                expected[fault].append((t, kind, text))
            else:
                near_reload = any(r <= t <= r + 10 for r in self.reloads)
                unexpected.append((t, kind, text + ("  (within 10 s after a reload)" if near_reload else "")))
        return expected, unexpected

    def report(self, machine):
        a = self.args
        log = (self.state / "error.log").read_text(errors="replace")
        expected, unexpected = self.classify()
        faults = Counter(w[0] for w in self.windows)
        L = []
        L.append("# mailproxy soak\n")
        L.append(f"Run by `benches/soak.sh --minutes {a.minutes}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
                 f"mailproxy {self.version} (release build), {platform.system()} {platform.release()}, "
                 f"{os.cpu_count()} cores, Python {platform.python_version()}.\n")
        L.append("## Setup\n")
        L.append(f"- Duration: {self.elapsed / 60:.1f} min of load.")
        L.append(f"- mailproxy: `worker_processes 2`, IMAP implicit TLS + IMAP STARTTLS, POP3 STLS, SMTP "
                 "STARTTLS + AUTH (XCLIENT to Postfix), all on 127.0.0.1; `mailproxy-auth` routes each "
                 "protocol to its backend; error_log at info.")
        L.append("- Backends: private Dovecot (IMAP + POP3) and private Postfix (SMTP, messages held) from tests/real.")
        L.append(f"- Concurrency: {a.imap + a.pop3 + a.smtp} client loops, each back to back with a 0.05-0.3 s pause: "
                 f"{a.imap} IMAP ({(a.imap + 1) // 2} implicit TLS, {a.imap // 2} STARTTLS; APPEND of a random "
                 f"1 KiB-1 MiB message, UID FETCH, SHA-256 compare, UID EXPUNGE), {a.pop3} POP3 (RETR of one of "
                 f"{POP3_SEED} seeded 1 KiB-1 MiB messages, SHA-256 compare), {a.smtp} SMTP (1-64 KiB message, "
                 "`250 queued as`, body read back from Postfix's queue with postcat and SHA-256 compared).")
        L.append("- Faults: a SIGHUP reload every minute (at +15 s); at +45 s of each minute one of, in rotation: "
                 f"SIGKILL of one worker, the auth server stopped for 5 s, Dovecot restarted. An error is "
                 f"expected only inside a fault window (start of the fault to its end + {GRACE:.0f} s); "
                 "errors during reloads count as unexpected.")
        L.append(f"- Also running on the machine: {machine}\n")
        L.append("## Results\n")
        L.append("| kind | operations ok | bytes relayed and hash-verified |")
        L.append("|---|---:|---:|")
        for kind in ("imap", "pop3", "smtp"):
            L.append(f"| {kind} | {self.stats.ok[kind]} | {self.stats.bytes[kind] / 2**20:.1f} MiB |")
        total_b = sum(self.stats.bytes.values())
        L.append(f"| **total** | **{sum(self.stats.ok.values())}** | **{total_b / 2**20:.1f} MiB** |\n")
        L.append("IMAP bytes count the message both ways (APPEND up, FETCH down).\n")
        L.append("| fault | times | expected client errors |")
        L.append("|---|---:|---:|")
        L.append(f"| reload (SIGHUP) | {len(self.reloads)} | (none expected) |")
        for kind in ("kill worker", "auth down 5 s", "dovecot restart"):
            L.append(f"| {kind} | {faults[kind]} | {len(expected[kind])} |")
        L.append("")
        for kind in ("kill worker", "auth down 5 s", "dovecot restart"):
            kinds = Counter(e[1] for e in expected[kind])
            msgs = Counter(re.sub(r"\d+", "N", e[2])[:120] for e in expected[kind])
            if msgs:
                L.append(f"- {kind}: by protocol {dict(kinds)}; most common: "
                         + "; ".join(f"`{m}` x{n}" for m, n in msgs.most_common(3)))
        L.append(f"\n**Unexpected errors: {len(unexpected)}**\n")
        for t, kind, text in unexpected[:50]:
            L.append(f"- +{t - self.t0:.1f}s {kind}: `{text}`")
        if unexpected:
            L.append("")
        started = len(re.findall(r"start worker process \d+", log))
        killed = len(re.findall(r"exited on signal 9", log))
        reconfigured = len(re.findall(r"received from \d+, reconfiguring", log))
        L.append(f"From mailproxy's error log: {reconfigured} reloads (`reconfiguring`), "
                 f"{killed} workers `exited on signal 9`, {started} `start worker process` lines "
                 f"(2 at start-up, 2 per reload, 1 per respawn after a kill: expected "
                 f"{2 + 2 * len(self.reloads) + faults['kill worker']}).\n")
        L.append("## Memory and file descriptors (master + all its workers, sampled every 5 s)\n")
        L.append("Each row: the last sample of that minute (in brackets: the largest in that minute; old workers "
                 "still draining after a reload count too). Client connections: established on the proxy's ports.\n")
        L.append("| minute | RSS MiB | fds | processes | client connections | ops ok (cumulative) |")
        L.append("|---:|---:|---:|---:|---:|---:|")
        by_minute = defaultdict(list)
        for s in self.samples:
            by_minute[int(s["t"] // 60)].append(s)
        for minute, group in sorted(by_minute.items()):
            s = group[-1]
            top_rss = max(g["rss_kib"] for g in group) / 1024
            top_fds = max(g["fds"] for g in group)
            top_procs = max(g["procs"] for g in group)
            L.append(f"| {minute} | {s['rss_kib'] / 1024:.1f} ({top_rss:.1f}) | {s['fds']} ({top_fds}) | "
                     f"{s['procs']} ({top_procs}) | {s['sessions']} | {s['ok']} |")
        rss = [s["rss_kib"] / 1024 for s in self.samples]
        fds = [s["fds"] for s in self.samples]
        L.append(f"\nRSS MiB first/last/max: {rss[0]:.1f} / {rss[-1]:.1f} / {max(rss):.1f}; "
                 f"fds first/last/max: {fds[0]} / {fds[-1]} / {max(fds)} ({len(self.samples)} samples; "
                 "the last one is taken after the clients stopped).\n")
        L.append("## Verdict\n")
        L.append(self.verdict(rss, fds, unexpected))
        return "\n".join(L) + "\n"

    def verdict(self, rss, fds, unexpected):
        n = len(rss)
        if n < 8:
            return "Too short a run for a verdict."
        # Compare the second minute+ (after warm-up) with the end of the run (before the final idle sample).
        early = rss[max(1, n // 10): max(2, n // 5)]
        late = rss[-(n // 10) - 1: -1] or rss[-1:]
        early_m, late_m = sum(early) / len(early), sum(late) / len(late)
        growth = (late_m - early_m) / early_m * 100
        flat = abs(growth) < 15 and fds[-1] <= fds[0] + 10
        text = (f"RSS averaged {early_m:.1f} MiB early in the run and {late_m:.1f} MiB at its end "
                f"({growth:+.0f}%); open fds went from {fds[0]} at the start to {fds[-1]} after the clients stopped. ")
        text += ("Memory and fds are **flat**: no sign of a leak across the reloads, kills and backend/auth outages. "
                 if flat else "Memory or fds are **not flat**: see the table above. ")
        text += ("No unexpected client error." if not unexpected
                 else f"**{len(unexpected)} unexpected client errors** (listed above).")
        return text


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--imap", type=int, default=12, help="IMAP client loops")
    parser.add_argument("--pop3", type=int, default=6, help="POP3 client loops")
    parser.add_argument("--smtp", type=int, default=6, help="SMTP client loops")
    parser.add_argument("--report", help="also write the markdown report here")
    parser.add_argument("--machine", default="", help="what else ran on the machine (for the report)")
    parser.add_argument("--proxy-bin", default=str(harness.target_dir() / "release" / "mailproxy"))
    parser.add_argument("--auth-bin", default=str(harness.target_dir() / "release" / "mailproxy-auth"))
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args()
    for path in (args.proxy_bin, args.auth_bin):
        if not os.path.exists(path):
            sys.exit(f"soak.py: missing {path} (cargo build --release --workspace)")
    why = postfix.available()
    if why:
        sys.exit(f"soak.py: {why}")
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    root = Path(tempfile.mkdtemp(prefix="mailproxy-soak-"))
    root.chmod(0o755)
    soak = Soak(args, root)
    soak.version = subprocess.run([args.proxy_bin, "-v"], capture_output=True, text=True)
    soak.version = (soak.version.stdout + soak.version.stderr).strip().removeprefix("mailproxy version: mailproxy/")
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    soak.version += f" at {commit.stdout.strip() or '?'}"
    status = 1
    try:
        soak.setup()
        print(f"soak: {args.minutes} min, state in {root}", flush=True)
        soak.run()
        text = soak.report(args.machine or "nothing noted")
        print(text)
        if args.report:
            Path(args.report).write_text(text)
        status = 0 if not soak.classify()[1] else 2
    except KeyboardInterrupt:
        print("soak: interrupted", file=sys.stderr)
    finally:
        soak.teardown()
        if args.keep or status != 0:
            print(f"soak: kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
