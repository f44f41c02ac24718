"""`manage.py up`: run the whole system on embedded defaults until Ctrl-C."""

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from webapp import embedded
from webapp.streams.kinds import get as get_kind


def interrupt(signum, frame):
    """Treat SIGTERM like Ctrl-C so every child is stopped too."""
    raise KeyboardInterrupt


class Command(BaseCommand):
    """Start Redis if none answers, migrate, create the demo, run web + worker + demo."""

    help = "Run web (Daphne), a prefork Celery worker, Redis if needed and the demo data."

    def add_arguments(self, parser):
        """Declare --port, --feed-port and --no-demo."""
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
        parser.add_argument("--feed-port", type=int, default=8765)
        parser.add_argument("--no-demo", action="store_true", help="no demo user or sources")

    def handle(self, *args, **options):
        """Run everything; Ctrl-C stops all of it."""
        signal.signal(signal.SIGTERM, interrupt)
        var = Path(settings.BASE_DIR) / "var"
        var.mkdir(exist_ok=True)
        children = []
        try:
            redis_process = self.ensure_redis(var)
            if redis_process:
                children.append(("redis", redis_process))
            call_command("migrate", interactive=False, verbosity=0)
            call_command("collectstatic", interactive=False, verbosity=0)
            python = sys.executable
            if not options["no_demo"]:
                log_path = var / "demo" / "app.log"
                log_path.parent.mkdir(exist_ok=True)
                self.create_demo(str(log_path), options["feed_port"], options["port"])
                children.append(("demo", self.spawn([
                    python, "manage.py", "demo", "--log", str(log_path),
                    "--feed-port", str(options["feed_port"])])))
            children.append(("worker", self.spawn([
                python, "-m", "celery", "-A", "celery_app", "worker", "-l", "info",
                "-Q", "tailf,feeds", "--pool", "prefork"])))
            children.append(("web", self.spawn([
                python, "-m", "daphne", "-b", "127.0.0.1", "-p", str(options["port"]),
                "webapp.asgi:application"])))
            self.stdout.write(self.style.SUCCESS(
                f"Tailboard is up: http://127.0.0.1:{options['port']}/  (Ctrl-C stops everything)"))
            self.wait(children)
        except KeyboardInterrupt:
            self.stdout.write("stopping…")
        finally:
            self.stop(children)

    def ensure_redis(self, var):
        """Use the Redis at REDIS_URL if it answers; else start one on that port."""
        url = settings.REDIS_URL
        if embedded.redis_answers(url):
            self.stdout.write(f"using the Redis at {url}")
            return None
        parts = urlsplit(url)
        if parts.hostname not in ("127.0.0.1", "localhost"):
            raise CommandError(f"REDIS_URL={url} does not answer and is not local: start it first")
        port = parts.port or 6379
        process = embedded.start_redis(port, var / "redis")
        self.stdout.write(f"started {embedded.redis_server_binary()} on 127.0.0.1:{port}")
        return process

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
            name="demo-deploys", defaults={"url": f"http://127.0.0.1:{feed_port}/feed.xml",
                                           "interval": 10, "queue": "feeds", "enabled": True})
        log.groups.add(group)
        feed.groups.add(group)
        self.stdout.write(self.style.SUCCESS(
            f"demo login: user 'demo', password '{password}' at http://127.0.0.1:{web_port}/"))

    def spawn(self, argv):
        """Start a child process in this folder with this environment."""
        return subprocess.Popen(argv, cwd=settings.BASE_DIR)

    def wait(self, children):
        """Return when any child exits (then everything is stopped)."""
        while True:
            for name, process in children:
                if process.poll() is not None:
                    raise CommandError(f"{name} exited with code {process.returncode}")
            time.sleep(0.5)

    def stop(self, children):
        """Terminate children, newest first; kill what does not stop in 10 s."""
        for _, process in reversed(children):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _, process in reversed(children):
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
