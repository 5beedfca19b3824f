#!/usr/bin/env python3
"""Config corpus: `nginx -t -c` and `mailproxy -t -c` on every config here must agree.

Cases are `*.conf` files and directories holding an `nginx.conf` (with includes beside
it). Each is copied to a temporary directory with its placeholders filled in
(`@TMP@` the copy's directory, `@P1@`..`@P9@` free high loopback ports, `@CERT@`/`@KEY@`
a self-signed certificate and `@DHPARAM@` DH parameters made at start, and the further TLS
material `make_tls_material` lists: `@KEY2@`, `@ECCERT@`/`@ECKEY@`, `@ENCKEY@`,
`@PASSFILE@`/`@BADPASSFILE@`, `@CA@`, `@CRL@`, `@CERTDATA@`/`@KEYDATA@`), then tested by
both programs. Required:

* the verdict (exit status) is the same, and it is nginx's verdict the case's name
  promises: `bad-*` cases must fail, the others must pass;
* the diagnostics (`[level] message in FILE:LINE`, warnings included) are the same,
  except lines that name mailproxy (its own notes, e.g. on skipped http{} blocks). A
  case listed in docs/nginx-differences.md with `<!-- compat: config-NAME -->` may
  differ as that section explains: when both fail, only the FILE:LINE (or its absence)
  of the fatal error must match; mailproxy may accept what nginx refuses, and refuse
  what nginx accepts only with its own `... is not supported by mailproxy` error (a
  feature it leaves out on purpose, e.g. `error_log memory:`).

    python3 nginx-compat/configs/run.py [--mailproxy PATH] [--filter SUBSTR] [-v]

Prints one line per case and `N passed, N failed`. Needs root (nginx -t writes the pid
file and binds the listen addresses) and Debian's nginx with libnginx-mod-mail and
libnginx-mod-stream (a few cases load the stream module beside mail).
"""

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DIFFERENCES_DOC = REPO / "docs" / "nginx-differences.md"
MARKER = re.compile(r"<!--\s*compat:\s*config-([\w.+-]+)\s*-->")
LOG_LINE = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(\w+)\] \d+#\d+: (.*)$")
LOCATION = re.compile(r" in (\S+:\d+|command line)$")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mailproxy", default=str(REPO / "target" / "release" / "mailproxy"))
    parser.add_argument("--nginx", default="/usr/sbin/nginx")
    parser.add_argument("--filter", default="")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    for program in (args.mailproxy, args.nginx):
        if not os.access(program, os.X_OK):
            print("not found: %s" % program)
            return 2
    documented = set(MARKER.findall(DIFFERENCES_DOC.read_text())) if DIFFERENCES_DOC.exists() else set()
    cases = sorted(p for p in HERE.iterdir() if p.suffix == ".conf" or (p / "nginx.conf").is_file())
    cases = [c for c in cases if args.filter in c.name]
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="nginx-compat-configs-") as scratch:
        material = make_tls_material(Path(scratch))
        for case in cases:
            name = case.name.removesuffix(".conf")
            problem = run_case(case, name, material, args, name in documented)
            if problem:
                failed += 1
                print("FAIL %s: %s" % (name, problem))
            else:
                passed += 1
                print("ok   %s" % name)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def make_tls_material(scratch: Path) -> dict:
    """Certificates, keys and friends that the cases name by placeholder.

    `@CERT@`/`@KEY@` self-signed RSA pair (CN=localhost); `@DHPARAM@` DH parameters;
    `@KEY2@` another RSA key (does not match `@CERT@`); `@ECCERT@`/`@ECKEY@` a self-signed
    ECDSA (P-256) pair; `@ENCKEY@` `@KEY@` encrypted with the pass phrase `secret`;
    `@PASSFILE@` a password file holding `secret`, `@BADPASSFILE@` one holding `wrong`;
    `@CA@` a CA certificate, `@CRL@` an (empty) CRL it signed; `@CERTDATA@`/`@KEYDATA@`
    the PEM text of `@CERT@`/`@KEY@` (for `ssl_certificate "data:@CERTDATA@"`).
    """
    cert, key, dh = scratch / "cert.pem", scratch / "key.pem", scratch / "dh.pem"
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)], **quiet)
    subprocess.run(["openssl", "dhparam", "-dsaparam", "-out", str(dh), "2048"], **quiet)
    key2, eccert, eckey = scratch / "key2.pem", scratch / "ec-cert.pem", scratch / "ec-key.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", str(key2)], **quiet)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", str(eckey),
                    "-out", str(eccert)], **quiet)
    enckey, passfile, badpass = scratch / "enc-key.pem", scratch / "pass.txt", scratch / "badpass.txt"
    subprocess.run(["openssl", "pkey", "-in", str(key), "-aes256", "-passout", "pass:secret",
                    "-out", str(enckey)], **quiet)
    passfile.write_text("secret\n")
    badpass.write_text("wrong\n")
    ca, cakey, crl = scratch / "ca.pem", scratch / "ca-key.pem", scratch / "crl.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=Test CA", "-keyout", str(cakey), "-out", str(ca)], **quiet)
    index = scratch / "ca-index.txt"
    index.write_text("")
    (scratch / "ca-crlnumber").write_text("01\n")
    cnf = scratch / "ca.cnf"
    cnf.write_text("[ca]\ndefault_ca = d\n[d]\ndatabase = %s\ncrlnumber = %s\n"
                   "default_md = sha256\ndefault_crl_days = 2\n" % (index, scratch / "ca-crlnumber"))
    subprocess.run(["openssl", "ca", "-config", str(cnf), "-gencrl", "-keyfile", str(cakey),
                    "-cert", str(ca), "-out", str(crl)], **quiet)
    return {"@CERT@": str(cert), "@KEY@": str(key), "@DHPARAM@": str(dh), "@KEY2@": str(key2),
            "@ECCERT@": str(eccert), "@ECKEY@": str(eckey), "@ENCKEY@": str(enckey),
            "@PASSFILE@": str(passfile), "@BADPASSFILE@": str(badpass), "@CA@": str(ca),
            "@CRL@": str(crl), "@CERTDATA@": cert.read_text().strip(),
            "@KEYDATA@": key.read_text().strip()}


def free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def materialise(case: Path, tmp: Path, material: dict) -> Path:
    """Copies the case into `tmp` with placeholders filled; returns the main file."""
    if case.is_dir():
        shutil.copytree(case, tmp, dirs_exist_ok=True)
        main = tmp / "nginx.conf"
    else:
        main = tmp / case.name
        shutil.copy(case, main)
    values = dict(material)
    values["@TMP@"] = str(tmp)
    for i, port in enumerate(free_ports(9), start=1):
        values["@P%d@" % i] = str(port)
    for path in tmp.rglob("*"):
        if path.is_file():
            text = path.read_bytes().decode()  # as is: CRLF line ends stay (read_text would drop them)
            for key, value in values.items():
                text = text.replace(key, value)
            path.write_bytes(text.encode())
    return main


def diagnostics(program: str, main: Path, tmp: Path, ours: bool) -> tuple[bool, list[str], str]:
    try:
        out = subprocess.run([program, "-t", "-c", str(main)], cwd=tmp, stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return False, ["[timeout] %s -t did not finish" % program], ""
    lines = []
    for line in out.stderr.splitlines():
        m = LOG_LINE.match(line)
        if not m:
            continue
        message = m.group(2).replace(str(tmp), "@TMP@")
        if ours and "mailproxy" in message:
            continue
        lines.append("[%s] %s" % (m.group(1), message))
    return out.returncode == 0, lines, out.stderr


def run_case(case: Path, name: str, material: dict, args, documented: bool) -> str:
    with tempfile.TemporaryDirectory(prefix="case-") as tmp_name:
        tmp = Path(tmp_name)
        main = materialise(case, tmp, material)
        ok_n, diag_n, raw_n = diagnostics(args.nginx, main, tmp, ours=False)
        ok_m, diag_m, raw_m = diagnostics(args.mailproxy, main, tmp, ours=True)
    if args.verbose:
        print("--- %s\nnginx:\n%s\nmailproxy:\n%s" % (name, raw_n, raw_m))
    if ok_n == name.startswith("bad-"):
        return "the corpus is wrong: nginx says %s\n  %s" % ("ok" if ok_n else "failed", "\n  ".join(diag_n))
    if documented and ok_m and not ok_n:
        return ""
    if documented and ok_n and not ok_m and refused_on_purpose(raw_m):
        return ""
    if ok_m != ok_n:
        return "nginx %s, mailproxy %s\n  nginx:     %s\n  mailproxy: %s" % (
            verdict(ok_n), verdict(ok_m), "\n             ".join(diag_n), "\n             ".join(diag_m))
    if diag_m == diag_n:
        return ""
    if documented and not ok_n and fatal_location(diag_m) == fatal_location(diag_n):
        return ""
    return "diagnostics differ\n  nginx:     %s\n  mailproxy: %s" % (
        "\n             ".join(diag_n), "\n             ".join(diag_m))


def refused_on_purpose(stderr: str) -> bool:
    """mailproxy's fatal line is its deliberate refusal of an nginx feature."""
    fatal = [m for m in map(LOG_LINE.match, stderr.splitlines()) if m and m.group(1) != "warn"]
    return bool(fatal) and "is not supported by mailproxy" in fatal[-1].group(2)


def verdict(ok: bool) -> str:
    return "passes" if ok else "fails"


def fatal_location(lines: list[str]) -> str:
    """FILE:LINE of the last non-warning line, `(none)` if it has none."""
    fatal = [line for line in lines if not line.startswith("[warn]")]
    if not fatal:
        return ""
    m = LOCATION.search(fatal[-1])
    return m.group(1) if m else "(none)"


if __name__ == "__main__":
    sys.exit(main())
