"""A real OpenLDAP directory for tests: Debian's slapd on a free 127.0.0.1 port, in a temp
folder, seeded with people and groups through ldapadd/ldapmodify (ldap-utils).

    with Directory(tmp_path) as directory:
        directory.add_user("alice", "secret", groups=["ops"])
        directory.set_groups("alice", [])

Base DN dc=tailboard,dc=test; people under ou=people, groups (groupOfNames) under ou=groups;
the service account is `directory.bind_dn` / `directory.bind_password`.
"""

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

from webapp import embedded

SLAPD = "/usr/sbin/slapd"
BASE = "dc=tailboard,dc=test"
PEOPLE = f"ou=people,{BASE}"
GROUPS = f"ou=groups,{BASE}"
ADMIN_DN = f"cn=admin,{BASE}"
ADMIN_PASSWORD = "directory-admin-pw"
SERVICE_DN = f"cn=tailboard,{BASE}"
SERVICE_PASSWORD = "tailboard-bind-pw"
NOBODY = f"cn=nobody,{BASE}"

CONFIG = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
pidfile {folder}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 10485760
suffix "{base}"
rootdn "{admin}"
rootpw {password}
directory {folder}/data
access to attrs=userPassword by self read by anonymous auth by * none
access to * by * read
"""


def available():
    """Tell whether slapd and ldap-utils are installed."""
    return Path(SLAPD).exists() and shutil.which("ldapadd") is not None


class Directory:
    """One slapd process with a tiny directory; `close()` (or the with block) stops it."""

    def __init__(self, folder):
        self.folder = Path(folder) / "slapd"
        (self.folder / "data").mkdir(parents=True, exist_ok=True)
        (self.folder / "slapd.conf").write_text(CONFIG.format(
            folder=self.folder, base=BASE, admin=ADMIN_DN, password=ADMIN_PASSWORD))
        self.port = embedded.free_port()
        self.uri = f"ldap://127.0.0.1:{self.port}"
        self.bind_dn, self.bind_password = SERVICE_DN, SERVICE_PASSWORD
        self.log = open(self.folder / "slapd.log", "wb")
        self.process = subprocess.Popen(
            [SLAPD, "-d", "0", "-h", self.uri, "-f", str(self.folder / "slapd.conf")],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait()
            self.ldif(self._seed(), "ldapadd")
        except BaseException:
            self.close()
            raise

    def _wait(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("slapd exited:\n" + (self.folder / "slapd.log").read_text())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("slapd did not start")

    def _seed(self):
        return (f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: Tailboard\n"
                f"dc: tailboard\n\n"
                f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n"
                f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n\n"
                f"dn: {SERVICE_DN}\nobjectClass: person\ncn: tailboard\nsn: service\n"
                f"userPassword: {SERVICE_PASSWORD}\n")

    def ldif(self, text, tool="ldapmodify"):
        """Apply LDIF as the directory's admin with ldapadd or ldapmodify."""
        subprocess.run([tool, "-x", "-H", self.uri, "-D", ADMIN_DN, "-w", ADMIN_PASSWORD],
                       input=text.encode(), check=True, capture_output=True, timeout=20)

    def user_dn(self, uid):
        """Return a person's DN."""
        return f"uid={uid},{PEOPLE}"

    def group_dn(self, name):
        """Return a group's DN."""
        return f"cn={name},{GROUPS}"

    def add_user(self, uid, password, groups=(), mail=None):
        """Add a person (inetOrgPerson) and put them in these groups (created as needed)."""
        self.ldif(f"dn: {self.user_dn(uid)}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
                  f"cn: {uid.title()} Example\ngivenName: {uid.title()}\nsn: Example\n"
                  f"mail: {mail or uid + '@tailboard.test'}\nuserPassword: {password}\n",
                  "ldapadd")
        for group in groups:
            self.add_member(group, uid)

    def add_member(self, group, uid):
        """Put a person in a group, creating the group when it does not exist."""
        try:
            self.ldif(f"dn: {self.group_dn(group)}\nchangetype: modify\nadd: member\n"
                      f"member: {self.user_dn(uid)}\n")
        except subprocess.CalledProcessError:
            # groupOfNames needs a member: a placeholder keeps an emptied group valid.
            self.ldif(f"dn: {self.group_dn(group)}\nobjectClass: groupOfNames\ncn: {group}\n"
                      f"member: {NOBODY}\nmember: {self.user_dn(uid)}\n", "ldapadd")

    def remove_member(self, group, uid):
        """Take a person out of a group."""
        self.ldif(f"dn: {self.group_dn(group)}\nchangetype: modify\ndelete: member\n"
                  f"member: {self.user_dn(uid)}\n")

    def delete_user(self, uid):
        """Remove a person's entry (their group memberships stay as dangling DNs)."""
        self.ldif(f"dn: {self.user_dn(uid)}\nchangetype: delete\n")

    def env(self, **extra):
        """Return the LDAP_* environment that points Tailboard at this directory."""
        return {"LDAP_SERVER_URI": self.uri, "LDAP_BIND_DN": self.bind_dn,
                "LDAP_BIND_PASSWORD": self.bind_password, "LDAP_USER_SEARCH": PEOPLE,
                "LDAP_GROUP_SEARCH": GROUPS, **extra}

    def close(self):
        """Stop slapd."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections and never answers (a hung LDAP)."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.uri = f"ldap://127.0.0.1:{self.port}"
        self.accepted = []
        self.closing = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.closing:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(connection)

    def close(self):
        """Stop accepting and drop every connection."""
        self.closing = True
        self.listener.close()
        for connection in self.accepted:
            connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
