"""A real IMAP server for the tests: Debian's dovecot (installed by .ci/run), started on a
free loopback port with its own configuration, users and maildirs in a temporary
directory. Mail "arrives" by IMAP APPEND, as a delivery agent would put it there.

Without /usr/sbin/dovecot the tests that need it are skipped, unless
LEADFLOOD_REQUIRE_IMAP=1 (CI sets it), which makes them fail instead.
"""

from __future__ import annotations

import getpass
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from imapclient import IMAPClient

from tests.live import free_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USERS = {"ann@sales.example": "imap-secret-1", "bo@sales.example": "imap-secret-2"}


class Dovecot:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.host = "127.0.0.1"
        root_user = os.geteuid() == 0
        # As root dovecot drops to its own users; as anyone else it runs as that user.
        internal = "dovecot" if root_user else getpass.getuser()
        login = "dovenull" if root_user else internal
        mail_user = pwd.getpwnam(internal)
        (root / "mail").mkdir()
        for sub in ("run", "state"):
            (root / sub).mkdir()
        if root_user:
            os.chown(root / "mail", mail_user.pw_uid, mail_user.pw_gid)
        (root / "users").write_text("".join(f"{u}:{{PLAIN}}{p}::::::\n" for u, p in USERS.items()))
        (root / "dovecot.conf").write_text(
            f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:{root}/mail/%u
default_login_user = {login}
default_internal_user = {internal}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={mail_user.pw_uid} gid={mail_user.pw_gid} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""
        )
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(root / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"dovecot did not start: {self.log()}")

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text()[-2000:] if path.exists() else ""

    def append(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        """A message arrives in the user's inbox."""
        with IMAPClient(self.host, port=self.port, ssl=False) as client:
            client.login(user, USERS[user])
            client.append(folder, raw)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="session")
def dovecot():
    if not Path(DOVECOT).exists():
        if os.environ.get("LEADFLOOD_REQUIRE_IMAP") == "1":
            pytest.fail("LEADFLOOD_REQUIRE_IMAP=1 and no dovecot (apt-get install dovecot-imapd)")
        pytest.skip("no dovecot here (apt-get install dovecot-imapd)")
    # Not under pytest's 0700 temp root: dovecot's own users must reach the maildirs.
    root = Path(tempfile.mkdtemp(prefix="leadflood-dovecot-"))
    root.chmod(0o755)
    server = Dovecot(root)
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)
