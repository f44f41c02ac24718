"""Start the real system on free 127.0.0.1 ports: Redis, a prefork worker, Daphne.

Used by the integration and browser tests and by the benchmarks. Every process is a real
one, started with its own environment, and stopped by `close()`.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis
from celery import Celery

from tests.manage_server import ManageServer
from tests.templates import templates
from webapp import embedded, redisconf

ROOT = Path(__file__).resolve().parent.parent
SECRET = "test-secret-key-" + "x" * 40
HEALTHZ_TOKEN = "test-healthz-token-" + "h" * 20
METRICS_TOKEN = "test-metrics-token-" + "m" * 20
STAFF_HEALTHZ = {"Authorization": f"Bearer {HEALTHZ_TOKEN}"}


DATABASES = ("sqlite", "postgres")


class Databases:
    """Which database new installations get: a SQLite file each, or a PostgreSQL database each.

    The integration tests switch `databases` (below) per test module; a harness created while
    "postgres" is in use gets a fresh database on the shared `server`, or on a server of its own
    when there is none.
    """

    def __init__(self):
        self.kind = "sqlite"
        self.server = None

    @contextlib.contextmanager
    def using(self, kind, server=None):
        """Make new installations use this kind (and PostgreSQL server) inside the block."""
        if kind not in DATABASES:
            raise ValueError(f"unknown database {kind!r}; expected one of {DATABASES}")
        previous = self.kind, self.server
        self.kind, self.server = kind, server
        try:
            yield
        finally:
            self.kind, self.server = previous


databases = Databases()


# Set for a test's second attempt (pytest-rerunfailures; tests/conftest.py): what a failed
# first attempt left in a module's installation (a source, a user of the same name) is removed
# before the helpers below make it again.
RERUN = {"active": False}


class Harness:
    """A Tailboard installation in a temp folder, with its processes.

    `database` is "sqlite" or "postgres"; by default the one `databases` has in use.
    `sentinel=True` puts Redis behind Sentinel (`tests/sentinel.py`: a master, a replica and
    three sentinels), and every process finds it through REDIS_SENTINELS.
    """

    def __init__(self, workdir, database=None, sentinel=False, **env):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.processes = []
        self.database = database or databases.kind
        self.postgres = self.own_postgres = None
        self.sqlite_path = self.workdir / "db.sqlite3"
        self.made_database = "DATABASE_URL" not in env
        self.database_url = env.pop("DATABASE_URL", None) or self._create_database()
        self.sentinel = None
        if sentinel:
            from tests.sentinel import SentinelGroup

            self.sentinel = SentinelGroup(self.workdir / "sentinel")
            self.redis_port = self.sentinel.first_master_port
            self.redis_process = self.sentinel.servers[self.redis_port]
            env = {**self.sentinel.env(), **env}
        else:
            self.redis_port, self.redis_process = embedded.start_free_redis(self.workdir / "redis")
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "webapp.settings",
            "TAILBOARD_ENV": "development",
            "DEBUG": "0",
            "SECRET_KEY": SECRET,
            "REDIS_URL": self.redis_url,
            "DATABASE_URL": self.database_url,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_ROOTS": f"{self.workdir}:{tempfile.gettempdir()}",
            "HEALTHZ_TOKEN": HEALTHZ_TOKEN,
            "METRICS_TOKEN": METRICS_TOKEN,
            "STATIC_ROOT": str(self.workdir / "static"),
            "STREAM_LEASE_SECONDS": "3",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "RAISE_CONTAINED_ERRORS": "1",
            **{key: str(value) for key, value in env.items()},
        }
        self.redis = self.sentinel.client() if self.sentinel else redis.Redis.from_url(
            self.redis_url)
        place = (redisconf.place(self.env["REDIS_URL"], self.env["REDIS_SENTINELS"],
                                 self.env["REDIS_SENTINEL_MASTER"]) if self.sentinel
                 else redisconf.place(self.redis_url))
        self.celery = Celery(broker=place.celery_url())
        self.celery.conf.broker_transport_options = place.celery_transport_options()
        self.manage_server = None
        try:
            restored = templates.restore(self)
            self.manage("migrate", "--noinput")  # nothing left to apply on a restored copy
            if not restored:
                templates.save(self)
        except BaseException:
            self.close()
            raise

    def _create_database(self):
        """Make this installation's empty database; return its DATABASE_URL."""
        if self.database == "sqlite":
            return f"sqlite:///{self.sqlite_path}"
        if self.database != "postgres":
            raise ValueError(f"unknown database {self.database!r}; expected one of {DATABASES}")
        from tests.postgres import PostgresServer

        self.postgres = databases.server
        if self.postgres is None:
            self.postgres = self.own_postgres = PostgresServer()
        try:
            return self.postgres.create_database()
        except BaseException:
            self._drop_database()
            raise

    def manage(self, *args, check=True):
        """Run `manage.py ARGS` in this installation (in its long-lived manage server, started
        with the current `env`); return its stdout."""
        if self.manage_server is None or self.manage_server.env != self.env:
            if self.manage_server:
                self.manage_server.close()
            self.manage_server = ManageServer(ROOT, self.env, self.workdir / "manage.log")
        result = self.manage_server.run(args, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def shell(self, code):
        """Run Python code in `manage.py shell`; return its stdout."""
        return self.manage("shell", "-c", code)

    def create_user(self, username, password="pw-" + "z" * 12, superuser=False, groups=()):
        """Create a user (optionally superuser, in groups); return the password."""
        self.shell(
            "from django.contrib.auth.models import User, Group\n"
            + (f"User.objects.filter(username={username!r}).delete()\n"
               if RERUN["active"] else "") +
            f"u = User.objects.create_user({username!r}, password={password!r})\n"
            f"u.is_superuser = u.is_staff = {superuser!r}\nu.save()\n"
            f"for g in {list(groups)!r}:\n"
            "    u.groups.add(Group.objects.get_or_create(name=g)[0])\n")
        return password

    def add_log(self, name, path, *extra):
        """Add a log source with the `sources` CLI; return its id."""
        self._forget_on_rerun("tailf.models", "LogSource", name)
        return int(self.manage("sources", "add-log", name, str(path), *extra).strip()
                   .splitlines()[-1])

    def _forget_on_rerun(self, module, model, name):
        """On a test's second attempt, delete the source its first attempt made."""
        if RERUN["active"]:
            self.shell(f"from {module} import {model}\n"
                       f"{model}.objects.filter(name={name!r}).delete()\n")

    def add_logs(self, pairs, queue="tailf"):
        """Add many log sources (name, path) in one go; return their ids in order."""
        out = self.shell(
            "import json\nfrom tailf.models import LogSource\n"
            f"pairs = json.loads({json.dumps(json.dumps([[n, str(p)] for n, p in pairs]))})\n"
            f"print(json.dumps([LogSource.objects.create(name=n, path=p, queue={queue!r}).pk "
            "for n, p in pairs]))\n")
        return json.loads(out.strip().splitlines()[-1])

    def add_feed(self, name, url, *extra):
        """Add a feed source with the `sources` CLI; return its id."""
        self._forget_on_rerun("feeds.models", "FeedSource", name)
        return int(self.manage("sources", "add-feed", name, url, *extra).strip()
                   .splitlines()[-1])

    def add_container(self, name, *extra):
        """Add a container source with the `sources` CLI; return its id."""
        self._forget_on_rerun("containers.models", "ContainerSource", name)
        return int(self.manage("sources", "add-container", name, *extra).strip()
                   .splitlines()[-1])

    def add_journal(self, name, *extra):
        """Add a journal source with the `sources` CLI; return its id."""
        self._forget_on_rerun("journal.models", "JournalSource", name)
        return int(self.manage("sources", "add-journal", name, *extra).strip()
                   .splitlines()[-1])

    def spawn(self, name, argv, **env):
        """Start a process with this environment, its output in a log file."""
        log = open(self.workdir / f"{name}.log", "ab")
        process = subprocess.Popen(argv, cwd=ROOT, env={**self.env, **env}, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        process.log_path = self.workdir / f"{name}.log"
        self.processes.append(process)
        return process

    def start_worker(self, name="w1", queues="tailf,feeds", concurrency=6, prefix=(), **env):
        """Start a real `celery -A celery_app worker --pool=prefork`; wait until it answers.

        `prefix` goes before the command (e.g. `setpriv` arguments to run it as another uid).
        """
        return self.wait_worker(self.spawn_worker(name, queues, concurrency, prefix, **env))

    def spawn_worker(self, name="w1", queues="tailf,feeds", concurrency=6, prefix=(), **env):
        """Start a worker like `start_worker` but return at once; `wait_worker` waits for it."""
        hostname = f"{name}@tailboard-test"
        log_path = self.workdir / f"worker-{name}.log"
        log_start = log_path.stat().st_size if log_path.exists() else 0
        process = self.spawn(f"worker-{name}", [
            *prefix, sys.executable, "-m", "celery", "-A", "celery_app", "worker", "--pool=prefork",
            "-c", str(concurrency), "-Q", queues, "-n", hostname, "-l", "info",
            "--without-gossip", "--without-mingle"], **env)
        process.hostname = hostname
        process.log_start = log_start
        return process

    def wait_worker(self, process, timeout=60):
        """Wait until a spawned worker answers a ping; return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"worker exited:\n{process.log_path.read_text()[-3000:]}")
            # Celery logs "<hostname> ready." once it consumes; only then is a ping worth it.
            if (f"{process.hostname} ready." in self._log_since(process.log_path,
                                                                 process.log_start)
                    and self.celery.control.ping(destination=[process.hostname], timeout=1.0)):
                return process
            time.sleep(0.05)
        raise RuntimeError(f"worker {process.hostname} did not answer:\n"
                           f"{process.log_path.read_text()[-3000:]}")

    @staticmethod
    def _log_since(path, offset):
        """Return what a process wrote to its log after `offset`."""
        with open(path, "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def start_daphne(self, name="web", daphne_args=(), **env):
        """Start a real Daphne on a free port; wait until it serves; return (process, base URL).

        `daphne_args` are extra command-line options (e.g. `--proxy-headers`)."""
        return self.wait_daphne(self.spawn_daphne(name, daphne_args, **env))

    def spawn_daphne(self, name="web", daphne_args=(), **env):
        """Start Daphne like `start_daphne` but return at once; `wait_daphne` waits for it."""
        port = embedded.free_port()
        process = self.spawn(name, [sys.executable, "-m", "daphne", *daphne_args, "-b",
                                    "127.0.0.1", "-p", str(port), "webapp.asgi:application"],
                             **env)
        process.pending_url = f"http://127.0.0.1:{port}"
        return process

    def wait_daphne(self, process, timeout=30):
        """Wait until a spawned Daphne serves the login page; set its `base_url`; return it."""
        base = process.pending_url
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"daphne exited:\n{process.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(base + "/accounts/login/", timeout=1).status_code == 200:
                    process.base_url = base
                    return process
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("daphne did not start")

    def login(self, base, username, password):
        """Log in over HTTP like a browser; return the cookie header for WebSockets."""
        with httpx.Client(base_url=base, timeout=10) as client:
            client.get("/accounts/login/")
            response = client.post("/accounts/login/", data={
                "username": username, "password": password,
                "csrfmiddlewaretoken": client.cookies["csrftoken"]},
                headers={"Referer": base + "/accounts/login/"})
            if "sessionid" not in client.cookies:
                raise RuntimeError(f"login failed for {username}: {response.status_code}")
            return f"sessionid={client.cookies['sessionid']}"

    def active_task_ids(self, worker):
        """Return the ids of tasks the worker is executing now."""
        replies = self.celery.control.inspect(destination=[worker.hostname], timeout=1.0
                                              ).active() or {}
        return {task["id"] for tasks in replies.values() for task in tasks}

    def task_end(self, task_id):
        """Return the end a task recorded in its `finally`, or None."""
        value = self.redis.get("tailboard:ended:" + task_id)
        return value.decode() if value else None

    def wait_for(self, predicate, timeout, interval=0.1):
        """Poll until predicate() is truthy; return its value or None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                return None
            time.sleep(interval)

    def stop(self, process, sig=signal.SIGTERM, timeout=15):
        """Signal a process group and wait for it to go."""
        if process.poll() is None:
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)

    def stop_all(self, processes, sig=signal.SIGTERM, timeout=15):
        """Signal every process group at once, then wait for each (SIGKILL after `timeout`)."""
        running = [process for process in processes if process.poll() is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
        deadline = time.monotonic() + timeout
        for process in running:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)

    def close(self):
        """Stop every process this harness started, then Redis."""
        if self.manage_server:
            self.manage_server.close()
        self.stop_all(self.processes)
        self.redis.close()
        if self.sentinel:
            self.sentinel.close()
        else:
            self.redis_process.terminate()
            try:
                self.redis_process.wait(10)
            except subprocess.TimeoutExpired:
                self.redis_process.kill()
        self._drop_database()

    def _drop_database(self):
        """Drop this installation's PostgreSQL database, or stop the server it started."""
        if self.own_postgres:
            self.own_postgres.stop()
        elif self.postgres and getattr(self, "database_url", "").startswith("postgres"):
            self.postgres.drop_database(self.database_url)
        self.postgres = self.own_postgres = None


@contextlib.contextmanager
def started_installation(workdir, workers=({},), **env):
    """Run a whole installation: an admin login, the given workers and Daphne; stop it after.

    `workers` is a list of start_worker() keyword sets; the first is also `.worker`.
    """
    harness = Harness(workdir, **env)
    try:
        # The workers and Daphne start side by side while the admin is created.
        booting = [harness.spawn_worker(**options) for options in workers]
        web = harness.spawn_daphne()
        harness.admin_password = harness.create_user("admin", superuser=True)
        harness.workers = [harness.wait_worker(process) for process in booting]
        harness.worker = harness.workers[0] if harness.workers else None
        harness.web = harness.wait_daphne(web)
        harness.admin_cookie = harness.login(harness.web.base_url, "admin",
                                             harness.admin_password)
        yield harness
    finally:
        harness.close()


def dumps(message):
    """Encode a client message."""
    return json.dumps(message)
