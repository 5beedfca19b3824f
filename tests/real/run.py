#!/usr/bin/env python3
"""Real clients against the proxy in front of a real Dovecot: the migration story end to end.

    python3 tests/real/run.py --proxy mailproxy            # target/release/mailproxy
    python3 tests/real/run.py --proxy nginx                 # /usr/sbin/nginx, proves the harness
    python3 tests/real/run.py --proxy nginx --auth php      # one auth server only

Starts a private Dovecot (tests/real/dovecot), seeds Alice's INBOX (one message is 10 MiB),
then for each auth server (`php -S examples/auth.php`, `mailproxy-auth`) starts the proxy with
a config derived from examples/migration/nginx.conf (plus a `pop3 ssl` server) and runs
tests/real/cases.py with imaplib, poplib and curl. Ends with `N passed, N failed, N skipped`;
exit status 1 if anything failed.
Every process it starts is stopped on exit, including on failure and Ctrl-C.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "dovecot"))

import cases  # noqa: E402
import harness  # noqa: E402
import haproxy  # noqa: E402
from dovecot import PrivateDovecot, wait_for_port  # noqa: E402

AUTH_VARIANTS = ("php", "rust", "rust-keepalive")
# mailproxy's own `auth_http_keepalive` (nginx refuses the directive): the Rust auth server,
# which speaks HTTP/1.1, with kept connections.
KEEPALIVE_LINE = "    auth_http_keepalive 4;\n"


@dataclass
class Target:
    """What one test run talks to (read by cases.py)."""

    label: str
    tls_port: int
    starttls_port: int
    backend_port: int
    cert: Path
    messages: dict
    uids: dict
    capabilities: list
    auth_methods: list
    timings: dict = field(default_factory=dict)
    pop3s_port: int = 0
    # HAProxy (send-proxy-v2) in front of a `listen ... proxy_protocol` server: see haproxy.py.
    haproxy_port: int = 0
    pp_port: int = 0
    error_log: Path | None = None


class TimedResult(unittest.TextTestResult):
    """Records how long each test took, for the timing summary."""

    durations = []

    def startTest(self, test):
        self._started = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        TimedResult.durations.append((time.monotonic() - self._started, test.id()))
        super().stopTest(test)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--proxy", choices=("mailproxy", "nginx"), default="mailproxy")
    parser.add_argument("--proxy-bin", help="proxy binary (default: target/release/mailproxy or nginx)")
    parser.add_argument("--auth", default=",".join(AUTH_VARIANTS),
                        help="comma list of auth servers to use, in order: php,rust")
    parser.add_argument("--auth-script", help="PHP auth script (default: examples/auth.php, "
                        "else tests/real/stand_in_auth.php)")
    parser.add_argument("--auth-bin", help="mailproxy-auth binary (default: target/release/)")
    parser.add_argument("--config", default=str(harness.MIGRATION_CONF),
                        help="nginx.conf to derive the proxy config from")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir for inspection")
    args = parser.parse_args()
    args.auth = [a for a in args.auth.split(",") if a]
    unknown = set(args.auth) - set(AUTH_VARIANTS)
    if unknown or not args.auth:
        parser.error(f"--auth takes any of {', '.join(AUTH_VARIANTS)}, got {args.auth}")
    if args.proxy == "nginx" and "rust-keepalive" in args.auth:
        parser.error("rust-keepalive uses auth_http_keepalive, which nginx does not have")
    return args


def resolve_binaries(args):
    """Absolute paths of everything we will run; exits with a clear message if one is missing."""
    release = harness.target_dir() / "release"
    if args.proxy_bin is None:
        args.proxy_bin = shutil.which("nginx") or "/usr/sbin/nginx"
        if args.proxy == "mailproxy":
            args.proxy_bin = str(release / "mailproxy")
    if args.auth_bin is None:
        args.auth_bin = str(release / "mailproxy-auth")
    if args.auth_script is None:
        official = harness.REPO / "examples" / "auth.php"
        args.auth_script = str(official if official.exists() else Path(__file__).parent / "stand_in_auth.php")
    needed = [args.proxy_bin, shutil.which("curl") or "curl", shutil.which("openssl") or "openssl"]
    if "php" in args.auth:
        needed += [shutil.which("php") or "php", args.auth_script]
    if any(a.startswith("rust") for a in args.auth):
        needed.append(args.auth_bin)
    missing = [p for p in needed if not os.path.exists(p)]
    if missing:
        sys.exit(f"run.py: missing {', '.join(missing)} (build with cargo build --release?)")


def start_auth(children, args, variant, base, state):
    port = harness.free_port()
    if variant == "php":
        harness.start_php_auth(children, args.auth_script, port, base.backend_port, state, base.pop3_port)
    else:
        harness.start_rust_auth(children, args.auth_bin, port, base.backend_port, state, base.pop3_port)
    return port


def start_proxy(children, args, conf, state, ports, timings):
    argv = harness.proxy_command(args.proxy, args.proxy_bin, conf, state)
    if args.proxy == "nginx":
        started = time.monotonic()
        check = subprocess.run(argv + ["-t"], capture_output=True, text=True)
        timings["nginx -t"] = time.monotonic() - started
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t rejected the derived config:\n{check.stderr}")
    started = time.monotonic()
    proc = children.start(args.proxy, argv, Path(state) / "proxy.out")
    for port in ports:
        wait_for_port(port, time.monotonic() + 20, proc, args.proxy)
    timings["proxy startup"] = time.monotonic() - started
    return proc


def print_logs(state, label):
    for name in ("proxy.out", "error.log", "stderr.log", "auth.log"):
        tail = harness.log_tail(Path(state) / name)
        if tail:
            print(f"--- {label}: tail of {name} ---\n{tail}")


def run_variant(children, args, variant, base):
    """Auth server + proxy for one auth variant, then the whole suite. Returns the result."""
    state = Path(base.root) / f"{args.proxy}-{variant}"
    state.mkdir()
    label = f"proxy={args.proxy} auth={variant}"
    print(f"\n=== {label} ===", flush=True)
    auth_port = start_auth(children, args, variant, base, state)
    tls_port, starttls_port, pop3s_port = harness.free_port(), harness.free_port(), harness.free_port()
    template = Path(args.config).read_text()
    conf = state / "mail.conf"
    derived = harness.derive_proxy_config(
        template, tls_port=tls_port, starttls_port=starttls_port, auth_port=auth_port,
        cert=base.cert, key=base.key, state=state, pop3s_port=pop3s_port)
    if variant == "rust-keepalive":
        derived = derived.replace("mail {\n", "mail {\n" + KEEPALIVE_LINE, 1)
        assert KEEPALIVE_LINE in derived, "no 'mail {' line to add auth_http_keepalive to"
    pp_port, haproxy_port = harness.free_port(), harness.free_port()
    conf.write_text(haproxy.add_proxy_protocol_server(derived, pp_port))
    capabilities, methods = harness.config_capabilities(template)
    target = Target(label, tls_port, starttls_port, base.backend_port, base.cert,
                    base.messages, base.uids, capabilities, methods, pop3s_port=pop3s_port)
    target.pp_port, target.error_log = pp_port, state / "error.log"
    ports = (tls_port, starttls_port, pop3s_port, pp_port)
    proc = start_proxy(children, args, conf, state, ports, target.timings)
    if haproxy.available():
        haproxy.start_haproxy(children, state, haproxy_port, pp_port)
        target.haproxy_port = haproxy_port

    cases.TARGET = haproxy.TARGET = target
    started = time.monotonic()
    suite = unittest.defaultTestLoader.loadTestsFromModule(cases)
    suite.addTests(unittest.defaultTestLoader.loadTestsFromModule(haproxy))
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=TimedResult)
    result = runner.run(suite)
    target.timings["suite"] = time.monotonic() - started
    if proc.poll() is not None:
        print(f"!! {args.proxy} exited with status {proc.returncode} during the tests")
        result.failures.append((label, "proxy died"))
    if not result.wasSuccessful():
        print_logs(state, label)
    children.stop_all()
    for what, seconds in target.timings.items():
        print(f"timing {label}: {what} {seconds:.2f}s")
    return result


@dataclass
class Base:
    """What all variants share: Dovecot, the seeded mailbox, the certificate."""

    root: str
    backend_port: int
    cert: Path
    key: Path
    messages: dict
    uids: dict
    pop3_port: int = 110


def main():
    args = parse_args()
    resolve_binaries(args)
    # SIGTERM (e.g. from CI's timeout) unwinds like Ctrl-C, so `finally` stops everything.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    root = tempfile.mkdtemp(prefix="mailproxy-real-")
    os.chmod(root, 0o711)  # Dovecot's and nginx's unprivileged processes traverse it
    children = harness.Children()
    dovecot = PrivateDovecot(os.path.join(root, "dovecot"), harness.free_port(), harness.free_port())
    total = time.monotonic()
    passed = failed = skipped = 0
    try:
        started = time.monotonic()
        dovecot.start()
        print(f"timing: dovecot startup {time.monotonic() - started:.2f}s")
        started = time.monotonic()
        messages = harness.seed_messages()
        uids = harness.seed_mailbox(dovecot.imap_port, "alice", "secret", messages)
        print(f"timing: seeding {sum(map(len, messages.values()))} bytes {time.monotonic() - started:.2f}s")
        cert, key = harness.make_certificate(root)
        base = Base(root, dovecot.imap_port, cert, key, messages, uids, dovecot.pop3_port)
        for variant in args.auth:
            try:
                result = run_variant(children, args, variant, base)
            except (RuntimeError, OSError, ValueError) as exc:
                # This variant could not start; report it and still run the others.
                print(f"setup of proxy={args.proxy} auth={variant} failed: {exc}")
                print_logs(Path(root) / f"{args.proxy}-{variant}", f"auth={variant}")
                children.stop_all()
                failed += 1
                continue
            bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
            skipped += len(result.skipped)
            failed += bad
            passed += result.testsRun - bad - len(result.skipped)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        failed += 1
    except Exception as exc:  # setup failure: report it as a failure, not a traceback storm
        print(f"setup failed: {exc}", file=sys.stderr)
        if dovecot.proc is not None:
            print(dovecot.log_tail(), file=sys.stderr)
        failed += 1
    finally:
        children.stop_all()
        dovecot.stop()
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    for seconds, test_id in sorted(TimedResult.durations, reverse=True)[:5]:
        print(f"slowest: {seconds:.2f}s {test_id}")
    print(f"timing: total {time.monotonic() - total:.2f}s")
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
