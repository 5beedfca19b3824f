"""A private Postfix instance for the SMTP stage: own config, queue and log under a temp dir.

`postfix -c DIR start-fg` runs the master daemon, which puts itself in a session of its own,
so `PrivatePostfix.stop` stops it by the pid in its pid file (`postfix stop`, then SIGKILL if
it lingers); call it before the directory goes away. smtpd listens on 127.0.0.1:PORT only, trusts XCLIENT
from 127.0.0.0/8 (so the proxy can pass on the real client), and puts every accepted message
on hold (`check_client_access static:HOLD`), where `postqueue -p` and `postcat -q` find it.
Nothing is ever delivered or relayed. Needs root (Postfix's master insists) and the `postfix`
package (Debian: `postfix/main_mailer_type select No configuration`).
"""

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
mail_owner = postfix
setgid_group = postdrop
myhostname = backend.test
mydomain = test
myorigin = backend.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_banner = $myhostname ESMTP backend
smtpd_authorized_xclient_hosts = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = check_client_access static:HOLD, permit_mynetworks, reject
alias_maps =
alias_database =
local_recipient_maps =
relayhost = [127.0.0.1]:9
"""

# chroot "n" everywhere: the instance must not depend on /var/spool/postfix.
MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
showq     unix  n - n -  - showq
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
smtp      unix  - - n -  - smtp
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


def available():
    """Why a private Postfix cannot run here, or None if it can."""
    if shutil.which("postfix") is None:
        return "postfix is not installed"
    if subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() != "0":
        return "Postfix's master daemon must be started as root"
    return None


class PrivatePostfix:
    def __init__(self, root, port):
        self.root = Path(root)
        self.port = port
        self.conf = self.root / "conf"
        self.proc = None

    def start(self, children, wait_for_port):
        for sub in ("conf", "queue", "data"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        shutil.chown(self.root / "data", user="postfix")
        (self.conf / "main.cf").write_text(MAIN_CF.format(root=self.root))
        (self.conf / "master.cf").write_text(MASTER_CF.format(port=self.port))
        argv = ["postfix", "-c", str(self.conf), "start-fg"]
        self.proc = children.start("postfix", argv, self.root / "postfix.out")
        wait_for_port(self.port, time.monotonic() + 20, self.proc, "postfix")

    def held(self, timeout=5.0):
        """Queue ids of the held messages, waiting until at least one is there."""
        deadline = time.monotonic() + timeout
        while True:
            out = subprocess.run(["postqueue", "-c", str(self.conf), "-p"],
                                 capture_output=True, text=True).stdout
            ids = re.findall(r"^([0-9A-F]{6,})!", out, re.M)
            if ids or time.monotonic() > deadline:
                return ids
            time.sleep(0.1)

    def message(self, queue_id):
        """The held message (envelope records and headers) as text."""
        return subprocess.run(["postcat", "-c", str(self.conf), "-q", queue_id],
                              capture_output=True, text=True).stdout

    def delete_all(self):
        subprocess.run(["postsuper", "-c", str(self.conf), "-d", "ALL"], capture_output=True)

    def log(self):
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, timeout=10.0):
        """Stop this instance's master (and with it every Postfix daemon it started)."""
        pid_file = self.root / "queue" / "pid" / "master.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        subprocess.run(["postfix", "-c", str(self.conf), "stop"], capture_output=True)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers signal 0; its state letter says it is gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False
