"""Start a throwaway PostgreSQL server from the system's binaries, as a non-root user.

Used by the integration tests (one server per test session, one database per installation).
The server listens on 127.0.0.1 on a free port; its data, log and unix socket live in one temp
folder that `stop()` removes.
"""

import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from webapp import embedded

ADMIN = "tailboard_admin"
APP_ROLE = "tailboard"
SERVER_OPTIONS = ("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")


def _version_key(bin_dir):
    """Sort key for a bin folder by the PostgreSQL version number in its path."""
    return [int(part) for part in re.findall(r"\d+", str(bin_dir))] or [0]


def _usable(bin_dir):
    """Tell whether this folder holds an executable initdb, pg_ctl and postgres."""
    return all(os.access(Path(bin_dir) / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres"))


def find_bin_dir():
    """Return the folder with initdb/pg_ctl/postgres (newest Debian one first), or None.

    `PG_BIN_DIR` wins when set; then `/usr/lib/postgresql/*/bin`, newest version first; then the
    folder `pg_ctl` on PATH resolves to, or `pg_config --bindir`.
    """
    explicit = os.environ.get("PG_BIN_DIR")
    if explicit:
        return Path(explicit) if _usable(explicit) else None
    for bin_dir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        if _usable(bin_dir):
            return Path(bin_dir)
    on_path = shutil.which("pg_ctl")
    if on_path and _usable(Path(on_path).resolve().parent):
        return Path(on_path).resolve().parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if result.returncode == 0 and _usable(result.stdout.strip()):
            return Path(result.stdout.strip())
    return None


def server_account():
    """Return the (uid, gid) the server runs as: ourselves, or `postgres`/`nobody` under root.

    PostgreSQL refuses to run as root, so a root test run hands the server to Debian's
    `postgres` system user (or `nobody` where there is none).
    """
    if os.geteuid() != 0:
        return os.geteuid(), os.getegid()
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid != 0:
            return entry.pw_uid, entry.pw_gid
    raise RuntimeError("running as root and neither a `postgres` nor a `nobody` user exists")


class PostgresServer:
    """A PostgreSQL cluster in a temp folder, run by a non-root user; `stop()` removes it."""

    def __init__(self, bin_dir=None, parent=None):
        self.bin_dir = Path(bin_dir or find_bin_dir() or "")
        if not _usable(self.bin_dir):
            raise RuntimeError("no PostgreSQL binaries found (apt-get install postgresql)")
        self.uid, self.gid = server_account()
        self.root = Path(tempfile.mkdtemp(prefix="tailboard-pg-", dir=parent))
        self.data = self.root / "data"
        self.socket_dir = self.root / "run"
        self.log_path = self.root / "server.log"
        self.admin_password = secrets.token_urlsafe(24)
        self.app_password = secrets.token_urlsafe(24)
        self.port = None
        self.running = False
        self.count = 0
        self.templates = {}  # for tests/templates.py: extra apps -> template database name
        try:
            self._init_cluster()
            self._start()
            self._create_app_role()
        except BaseException:
            self.stop()
            raise

    def _run(self, *argv, timeout=120):
        """Run a PostgreSQL program as the server account; raise with its output on failure."""
        result = subprocess.run(
            [str(self.bin_dir / argv[0]), *argv[1:]], cwd=self.root, user=self.uid,
            group=self.gid, extra_groups=[], capture_output=True, text=True, timeout=timeout,
            env={"PATH": f"{self.bin_dir}:/usr/bin:/bin", "LC_ALL": "C", "LANG": "C",
                 "HOME": str(self.root)}, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({result.returncode}):\n{result.stdout}"
                               f"{result.stderr}{self.log_tail()}")
        return result.stdout

    def _init_cluster(self):
        """Create the data folder with a password-protected superuser, owned by the account."""
        self.socket_dir.mkdir()
        password_file = self.root / "pwfile"
        password_file.write_text(self.admin_password + "\n")
        for path in (self.root, self.socket_dir, password_file):
            os.chown(path, self.uid, self.gid)
        os.chmod(self.root, 0o700)
        try:
            self._run("initdb", "-D", str(self.data), "-U", ADMIN, f"--pwfile={password_file}",
                      "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync")
        finally:
            password_file.unlink()

    def _start(self, attempts=3):
        """Start the server on a free 127.0.0.1 port (retrying if the port got taken)."""
        for attempt in range(attempts):
            self.port = embedded.free_port()
            options = " ".join(("-c listen_addresses=127.0.0.1", f"-p {self.port}",
                                f"-k {self.socket_dir}", *SERVER_OPTIONS))
            try:
                self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w",
                          "-t", "60", "-o", options, "start")
                self.running = True
                return
            except RuntimeError:
                if attempt == attempts - 1:
                    raise

    def log_tail(self, size=3000):
        """Return the end of the server log (for error messages)."""
        try:
            return "\n--- server.log ---\n" + self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def url(self, database, user=APP_ROLE, password=None):
        """Return the `postgres://` URL of a database on this server."""
        password = password or (self.app_password if user == APP_ROLE else self.admin_password)
        return f"postgres://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def admin_connection(self):
        """Open an autocommit psycopg connection as the superuser to the `postgres` database."""
        import psycopg

        return psycopg.connect(self.url("postgres", user=ADMIN), autocommit=True,
                               connect_timeout=10)

    def _create_app_role(self):
        """Create the unprivileged login role Tailboard connects as."""
        from psycopg import sql

        with self.admin_connection() as connection:
            connection.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(APP_ROLE), sql.Literal(self.app_password)))

    def create_database(self, prefix="tailboard"):
        """Create a fresh database owned by the app role; return its URL."""
        from psycopg import sql

        self.count += 1
        name = f"{prefix}_{self.count}"
        with self.admin_connection() as connection:
            connection.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(APP_ROLE)))
        return self.url(name)

    def copy_database(self, url, name):
        """Create database `name` as a copy of the one at this URL (nobody may be connected)."""
        from psycopg import sql

        with self.admin_connection() as connection:
            connection.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(url.rsplit("/", 1)[1]),
                sql.Identifier(APP_ROLE)))

    def recreate_database(self, url, template):
        """Drop the database at this URL and create it again as a copy of `template`."""
        from psycopg import sql

        name = url.rsplit("/", 1)[1]
        with self.admin_connection() as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
            connection.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(template), sql.Identifier(APP_ROLE)))

    def drop_database(self, url):
        """Drop the database at this URL, ending any session still connected to it."""
        from psycopg import sql

        name = url.rsplit("/", 1)[1]
        with self.admin_connection() as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))

    def stop(self):
        """Stop the server (`pg_ctl stop -m fast`, then immediate) and remove its folder."""
        try:
            if self.running:
                try:
                    self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "30", "-m", "fast",
                              "stop")
                except (RuntimeError, subprocess.TimeoutExpired):
                    self._kill_postmaster()
                self.running = False
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _kill_postmaster(self):
        """Last resort when a fast stop fails: SIGKILL the postmaster named in its pid file."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
