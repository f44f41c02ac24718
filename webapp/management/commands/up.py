"""`manage.py up`: run the whole system on embedded defaults until Ctrl-C, TERM or HUP."""

import ipaddress
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from webapp import embedded, redisconf
from webapp.streams import faults
from webapp.streams.kinds import get as get_kind

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Children are stopped in this order, each waited for, so nothing that still talks to Redis
# outlives it. Seconds each may take after TERM. A worker still running stream tasks after
# its grace (their viewers are gone with web) gets QUIT, Celery's cold stop, then KILL.
STOP_ORDER = ("demo", "web", "beat", "alerts", "worker", "redis")
GRACE = {"demo": 5, "web": 10, "beat": 5, "alerts": 3, "worker": 3, "redis": 5}
WORKERS = ("worker", "alerts")
PR_SET_PDEATHSIG = 1
# The demo feed's server listens here; the worker's FEED_INTERNAL_ALLOW gets this entry.
DEMO_FEED_HOST = "127.0.0.1"


class StopRequested(BaseException):
    """A stop signal (INT, TERM or HUP) arrived (a BaseException, like KeyboardInterrupt)."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_stop_signal = None  # the stop signal received, if any
_deferred = 0  # >0 while a child is being started: the signal is only recorded then


def request_stop(signum, frame):
    """Signal handler: unwind the main loop so every child is stopped in order.

    The signal is recorded too: Python swallows an exception raised while a finaliser or a
    GC callback runs, so a raise can be lost; `stop_if_requested` (before each start, and
    twice a second while waiting) acts on the record then. While a child is being started
    (`Command.spawn`: fork, the fork hooks of logging and others, registering the child) the
    handler only records: a raise there would be printed and swallowed by a fork hook, or
    would leave a started child that nobody stops in order.
    """
    global _stop_signal
    _stop_signal = signum
    if not _deferred:
        raise StopRequested(signum)


@contextmanager
def starting():
    """While a child is started and registered, a stop signal is only recorded; the next
    `stop_if_requested` acts on it."""
    global _deferred
    stop_if_requested()
    _deferred += 1
    try:
        yield
    finally:
        _deferred -= 1


def stop_if_requested():
    """Raise StopRequested when a stop signal arrived (its own raise may have been lost)."""
    if _stop_signal is not None:
        raise StopRequested(_stop_signal)


def die_with_parent():
    """In a child before exec: get SIGTERM if `up` itself dies (Linux), so nothing is orphaned."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def is_loopback(host):
    """Tell whether a listen address only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowing_demo_feed(environ):
    """Return `environ` with the demo feed's host added to FEED_INTERNAL_ALLOW: a feed may
    reach an internal address only when that allow-list names it (docs/feeds.md)."""
    entries = [entry.strip() for entry in environ.get("FEED_INTERNAL_ALLOW", "").split(",")
               if entry.strip()]
    if DEMO_FEED_HOST not in entries:
        entries.append(DEMO_FEED_HOST)
    return {**environ, "FEED_INTERNAL_ALLOW": ",".join(entries)}


def group_alive(pgid):
    """Tell whether any process is left in this process group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_group(pgid, signum):
    """Send a signal to a whole process group; a group already gone is fine."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


class Command(BaseCommand):
    """Start Redis if none answers, migrate, create the demo, run web + worker + demo."""

    help = ("Run web (Daphne), a prefork Celery worker, Redis if needed and the demo data; "
            "Ctrl-C, SIGTERM or SIGHUP stops them in order (demo, web, beat, alert "
            "worker, stream worker, Redis).")

    def add_arguments(self, parser):
        """Declare --host, --port, --feed-port, --no-demo and --var-dir."""
        parser.add_argument("--host", default="127.0.0.1",
                            help="address Daphne listens on (default 127.0.0.1; anything "
                                 "else: see docs/deploy.md)")
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
        parser.add_argument("--feed-port", type=int, default=8765)
        parser.add_argument("--no-demo", action="store_true", help="no demo user or sources")
        parser.add_argument("--var-dir", type=Path, default=None,
                            help="folder for the embedded Redis and the demo log "
                                 "(default: var/ next to manage.py)")

    def handle(self, *args, **options):
        """Run everything until a stop signal or a child's exit; then stop all in order."""
        global _stop_signal
        _stop_signal = None
        for signum in STOP_SIGNALS:
            # Explicitly, for INT too: `nohup` and `cmd &` in scripts start us with INT ignored.
            signal.signal(signum, request_stop)
        var = (options["var_dir"] or Path(settings.BASE_DIR) / "var").resolve()
        var.mkdir(parents=True, exist_ok=True)
        children = {}
        try:
            self.ensure_redis(var, children)
            call_command("migrate", interactive=False, verbosity=0)
            call_command("collectstatic", interactive=False, verbosity=0)
            python = sys.executable
            worker_env = None
            if not options["no_demo"]:
                log_path = var / "demo" / "app.log"
                log_path.parent.mkdir(exist_ok=True)
                self.create_demo(str(log_path), options["feed_port"], options["port"])
                self.spawn(children, "demo", [
                    python, "manage.py", "demo", "--log", str(log_path),
                    "--feed-port", str(options["feed_port"])])
                worker_env = allowing_demo_feed(os.environ)
                self.say(f"demo feed: the worker's FEED_INTERNAL_ALLOW is "
                         f"{worker_env['FEED_INTERNAL_ALLOW']} (feeds may reach "
                         f"{DEMO_FEED_HOST})")
            self.spawn(children, "worker", [
                python, "-m", "celery", "-A", "celery_app", "worker", "-l", "info",
                "-Q", "tailf,feeds", "--pool", "prefork"], env=worker_env)
            # Alert rules run with no browser open, in processes of their own (docs/alerts.md).
            self.spawn(children, "alerts", [
                python, "-m", "celery", "-A", "celery_app", "worker", "-l", "info",
                "-n", "alerts@%h", "-Q", "tailf.alerts,feeds.alerts,alerts", "-c", "4",
                "--pool", "prefork"], env=worker_env)
            self.spawn(children, "beat", [
                python, "-m", "celery", "-A", "celery_app", "beat", "-l", "info",
                "-s", str(var / "celerybeat-schedule")])
            self.spawn(children, "web", [
                python, "-m", "daphne", "-b", options["host"], "-p", str(options["port"]),
                "webapp.asgi:application"])
            self.announce(options)
            self.wait(children)
        except StopRequested as stop:
            self.say(f"{stop} received: stopping demo, web, beat, alert and stream workers, "
                     "then Redis…")
        finally:
            for signum in STOP_SIGNALS:
                signal.signal(signum, signal.SIG_IGN)
            self.stop(children)
        self.say("stopped.")

    def say(self, text, style=None):
        """Write one line to stdout now (it is often a pipe)."""
        self.stdout.write(style(text) if style else text)
        self.stdout.flush()

    def announce(self, options):
        """Print where Tailboard answers, and what to know about the chosen setup."""
        host, port = options["host"], options["port"]
        shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
        self.say(f"Tailboard is up: http://{shown}:{port}/  (Ctrl-C stops everything)",
                 self.style.SUCCESS)
        if not is_loopback(host):
            self.say(f"warning: listening on {host}, reachable from other machines over plain "
                     "HTTP with development settings; for production (TLS proxy, "
                     "TAILBOARD_ENV=production, SECRET_KEY, ALLOWED_HOSTS) see docs/deploy.md",
                     self.style.WARNING)
            if "*" not in settings.ALLOWED_HOSTS:
                self.say("note: only these host names are served: "
                         f"{', '.join(settings.ALLOWED_HOSTS) or '(none)'}; add the name or "
                         "address you browse to with ALLOWED_HOSTS=...", self.style.WARNING)
        # `scripts/up` adds the demo folder to LOG_ROOTS for its children only: a plain shell
        # (manage.py sources add-log, a second worker) needs the same roots to agree with it.
        self.say("in another shell, manage.py and further workers need the same log roots: "
                 f"export LOG_ROOTS={shlex.quote(':'.join(settings.LOG_ROOTS))}")
        if options["no_demo"]:
            self.say("no demo login (--no-demo): create one with "
                     "`.venv/bin/python manage.py createsuperuser`")

    def ensure_redis(self, var, children):
        """Use the Redis at REDIS_URL if it answers; else start one on that port (added to
        `children` as "redis").

        With REDIS_SENTINELS, use the master they name; never start one.
        """
        place = redisconf.configured()
        if place.via_sentinel:
            try:
                client = place.sync_client(socket_timeout=2, socket_connect_timeout=2)
                client.ping()
                client.close()
            except faults.OUTSIDE as exc:
                raise CommandError(f"Redis ({place.describe()}) does not answer: {exc}") from None
            self.say(f"using the Redis {place.describe()}")
            return
        url = settings.REDIS_URL
        if embedded.redis_answers(url):
            self.say(f"using the Redis at {url}")
            return
        parts = urlsplit(url)
        if parts.hostname not in ("127.0.0.1", "localhost"):
            raise CommandError(f"REDIS_URL={url} does not answer and is not local: start it first")
        port = parts.port or 6379
        with starting():
            process = children["redis"] = embedded.start_redis(port, var / "redis")
        self.say(f"started redis (pid {process.pid}): {embedded.redis_server_binary()} on "
                 f"127.0.0.1:{port}")

    def create_demo(self, log_path, feed_port, web_port):
        """Create (or refresh) the demo login and the demo sources; print the login."""
        group, _ = Group.objects.get_or_create(name="demo")
        password = secrets.token_urlsafe(12)
        user, _ = get_user_model().objects.get_or_create(username="demo")
        user.set_password(password)
        user.is_staff = user.is_superuser = True
        user.save()
        user.groups.add(group)
        log, _ = get_kind("log").source_model.objects.update_or_create(
            name="demo-app", defaults={"path": log_path, "queue": "tailf", "enabled": True})
        feed, _ = get_kind("feed").source_model.objects.update_or_create(
            name="demo-deploys", defaults={"url": f"http://{DEMO_FEED_HOST}:{feed_port}/feed.xml",
                                           "interval": 10, "queue": "feeds", "enabled": True})
        log.groups.add(group)
        feed.groups.add(group)
        self.say(f"demo login: user 'demo', password '{password}' at "
                 f"http://127.0.0.1:{web_port}/", self.style.SUCCESS)

    def spawn(self, children, name, argv, env=None):
        """Start a child in a process group of its own, so a terminal's Ctrl-C reaches only us,
        and add it to `children`. `env` replaces the environment it inherits.

        We then stop the children one by one, in order, instead of all at once. A stop signal
        arriving meanwhile is acted on at the next start or wait (`request_stop`).
        """
        with starting():
            process = children[name] = subprocess.Popen(
                argv, cwd=settings.BASE_DIR, env=env, start_new_session=True,
                preexec_fn=die_with_parent if sys.platform == "linux" else None)
        self.say(f"started {name} (pid {process.pid})")

    def wait(self, children):
        """Return when any child exits (then everything is stopped)."""
        while True:
            stop_if_requested()
            for name, process in children.items():
                if process.poll() is not None:
                    raise CommandError(f"{name} exited with code {process.returncode}")
            time.sleep(0.5)

    def stop(self, children):
        """Stop demo, web, beat, the alert and stream workers, then Redis, each (and its process
        group) before the next."""
        for name in STOP_ORDER:
            process = children.get(name)
            if process is not None:
                self.stop_one(name, process, GRACE[name])

    def stop_one(self, name, process, grace):
        """TERM the child itself and wait; then QUIT (worker: cold stop) and KILL its group.

        Only the child gets TERM: a Celery worker stops its own pool processes (a pool process
        killed under it is reported as a lost worker, with a traceback).
        """
        steps = [(signal.SIGTERM, grace)]
        if name in WORKERS:
            steps.append((signal.SIGQUIT, 10))
        steps.append((signal.SIGKILL, 5))
        waited = 0
        for signum, seconds in steps:
            if signum == signal.SIGTERM:
                if process.poll() is None:
                    process.send_signal(signum)
            elif process.poll() is None or group_alive(process.pid):
                self.say(f"{name} (pid {process.pid}) still running after {waited} s: "
                         f"sending {signal.Signals(signum).name}")
                signal_group(process.pid, signum)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                if process.poll() is not None and not group_alive(process.pid):
                    self.say(f"stopped {name} (pid {process.pid})")
                    return
                time.sleep(0.05)
            waited += seconds
        self.say(f"could not stop {name} (pid {process.pid})", self.style.ERROR)
