"""Certificates for the client-certificate dialogues, made with the openssl CLI at start-up.

`ca.pem` signs `client.pem` (serial 0x0A1B2C, so the `Auth-SSL-Serial` is known); `self.pem`
is a self-signed client certificate no CA vouches for. Both proxies get the same files, so the
`Auth-SSL-*` headers (fingerprint, PEM) compare equal.
"""

import subprocess
from pathlib import Path

# Names a dialogue's `client-cert:` header may use.
CLIENT_CERTS = ("client", "self")


def _openssl(directory: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)


def make_pki(directory: Path) -> dict[str, tuple[str, str]]:
    """Writes the CA and the client certificates; returns {name: (cert, key)} by file path."""
    directory.mkdir(exist_ok=True)
    key = ["-newkey", "rsa:2048", "-nodes"]
    _openssl(directory, "req", "-x509", *key, "-days", "2", "-subj", "/O=Example Org/CN=Test CA",
             "-keyout", "ca.key", "-out", "ca.pem")
    _openssl(directory, "req", "-new", *key, "-subj", "/O=Example Org/CN=client user",
             "-keyout", "client.key", "-out", "client.csr")
    _openssl(directory, "x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-set_serial", "0x0A1B2C", "-days", "2", "-out", "client.pem")
    _openssl(directory, "req", "-x509", *key, "-days", "2", "-subj", "/CN=stranger",
             "-keyout", "self.key", "-out", "self.pem")
    return {name: (str(directory / (name + ".pem")), str(directory / (name + ".key")))
            for name in CLIENT_CERTS}
