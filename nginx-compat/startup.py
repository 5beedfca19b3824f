#!/usr/bin/env python3
"""Start-up and `-s` failures: what nginx and mailproxy print on the terminal, and their
exit status, for the mistakes an admin meets first.

Each case runs the same config (only the pid and log paths differ) through the real
nginx 1.22.1 and through mailproxy, and requires the same exit status and the same
stderr once the variable parts are masked: the time and `PID#TID` of full log lines,
the program's name (`nginx: [emerg] ...` / `mailproxy: [emerg] ...`) and each run's
own directory. Cases:

* an address already in use (5 tries 500 ms apart, then `still could not bind()`);
* port 993 bound by a user who is not root (`13: Permission denied`);
* a key the user cannot read, and a key that does not exist;
* `-s reload` with a certificate that cannot be loaded, and with a syntax error
  (nothing is signalled, exit 1);
* `-s stop` without a running instance (no pid file);
* `-s reload` to a running instance (exit 0, `signal process started`).

    python3 nginx-compat/startup.py [--mailproxy PATH] [-v]

Needs root (some cases run as `nobody`) and Debian's nginx with libnginx-mod-mail.
Prints one line per case and `N passed, N failed`.
"""

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOG_LINE = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (\[\w+\]) \d+#\d+: ")
MODULE = "/usr/lib/nginx/modules/ngx_mail_module.so"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Run:
    """One program's directory: a certificate and key, its config, its pid and log."""

    def __init__(self, root, name, program):
        self.dir = Path(root) / name
        self.dir.mkdir()
        os.chmod(self.dir, 0o755)
        self.program = program
        self.name = name
        self.cert, self.key = self.dir / "cert.pem", self.dir / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=localhost", "-keyout", str(self.key), "-out", str(self.cert)],
            check=True, capture_output=True)
        os.chmod(self.key, 0o600)
        self.log = self.dir / "error.log"
        self.log.touch()
        os.chmod(self.log, 0o666)  # the `nobody` cases log here too

    def config(self, port, key=None, extra=""):
        conf = self.dir / "nginx.conf"
        conf.write_text(
            f"load_module {MODULE};\n{extra}pid {self.dir}/run.pid;\nerror_log {self.log} info;\n"
            "daemon on;\nevents { worker_connections 64; }\nmail {\n    auth_http 127.0.0.1:9;\n"
            f"    ssl_certificate {self.cert};\n    ssl_certificate_key {key or self.key};\n"
            f"    server {{ listen 127.0.0.1:{port} ssl; protocol imap; }}\n}}\n")
        os.chmod(conf, 0o644)
        return conf

    def run(self, args, as_nobody=False):
        cmd = [self.program] + [str(a) for a in args]
        if as_nobody:
            cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] + cmd
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        return out.returncode, self.mask(out.stderr)

    def mask(self, text):
        lines = []
        for line in text.splitlines():
            line = LOG_LINE.sub(r"\1 ", line)
            line = line.replace(str(self.dir), "DIR")
            line = re.sub(r"^(nginx|mailproxy): ", "PROGRAM: ", line)
            lines.append(line)
        return "\n".join(lines)

    def stop(self):
        subprocess.run([self.program, "-s", "stop", "-c", self.dir / "nginx.conf"], capture_output=True)
        time.sleep(0.3)


def address_in_use(run, port):
    holder = socket.socket()
    holder.bind(("127.0.0.1", port))
    holder.listen()
    try:
        return run.run(["-c", run.config(port)])
    finally:
        holder.close()


def privileged_port_without_root(run, port):
    os.chmod(run.key, 0o644)  # so that binding is what fails
    return run.run(["-c", run.config(993)], as_nobody=True)


def unreadable_key(run, port):
    return run.run(["-c", run.config(port)], as_nobody=True)


def missing_key(run, port):
    return run.run(["-c", run.config(port, key=run.dir / "missing.pem")])


def reload_with_broken_certificate(run, port):
    return run.run(["-s", "reload", "-c", run.config(port, key=run.dir / "missing.pem")])


def reload_with_syntax_error(run, port):
    return run.run(["-s", "reload", "-c", run.config(port, extra="worker_procesess 2;\n")])


def stop_without_instance(run, port):
    return run.run(["-s", "stop", "-c", run.config(port)])


def reload_running(run, port):
    conf = run.config(port)
    started = run.run(["-c", conf])
    if started[0] != 0:
        return started
    try:
        return run.run(["-s", "reload", "-c", conf])
    finally:
        run.stop()


CASES = [address_in_use, privileged_port_without_root, unreadable_key, missing_key,
         reload_with_broken_certificate, reload_with_syntax_error, stop_without_instance,
         reload_running]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mailproxy", default=str(REPO / "target" / "release" / "mailproxy"))
    parser.add_argument("--nginx", default="/usr/sbin/nginx")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("startup: needs root")
        return 2
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="mailproxy-startup-") as root:
        os.chmod(root, 0o755)
        for case in CASES:
            name = case.__name__
            port = free_port()  # the same for both: it shows in messages
            ours = case(Run(root, f"{name}-mailproxy", os.path.abspath(args.mailproxy)), port)
            theirs = case(Run(root, f"{name}-nginx", args.nginx), port)
            if ours == theirs:
                passed += 1
                print(f"ok   {name}" + (f"\n{ours[1]}" if args.verbose else ""))
            else:
                failed += 1
                print(f"FAIL {name}\n  nginx (exit {theirs[0]}):\n    " + theirs[1].replace("\n", "\n    ")
                      + f"\n  mailproxy (exit {ours[0]}):\n    " + ours[1].replace("\n", "\n    "))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
