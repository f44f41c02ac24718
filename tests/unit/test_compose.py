"""The deployment files: docker-compose.yml and the Dockerfile, checked by parsing only."""

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SECRETS = ("SECRET_KEY", "POSTGRES_PASSWORD")
INTERPOLATED = re.compile(r"^\$\{(?P<name>[A-Z_][A-Z0-9_]*)(?::?[-?][^}]*)?\}$")


@pytest.fixture(scope="module")
def services():
    """The compose services, with YAML anchors and merge keys resolved."""
    return yaml.safe_load(COMPOSE.read_text())["services"]


@pytest.fixture(scope="module")
def workers(services):
    """The worker services by name: those named worker* and any that run a celery worker."""
    return {name: service for name, service in services.items()
            if name.startswith("worker") or ("celery" in argv(service)
                                             and "beat" not in argv(service))}


@pytest.fixture(scope="module")
def instructions():
    """The Dockerfile as (INSTRUCTION, arguments) pairs, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def argv(service):
    """Return a service's command as a list of words ([] when it has none)."""
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else list(command)


def environment(service):
    """Return a service's environment as a dict, from either compose syntax."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def queues(words):
    """Return the queues a celery worker command line consumes (-Q/--queues)."""
    found = []
    for i, word in enumerate(words):
        if word in ("-Q", "--queues") and i + 1 < len(words):
            found += words[i + 1].split(",")
        elif word.startswith("--queues="):
            found += word.partition("=")[2].split(",")
        elif word.startswith("-Q") and len(word) > 2:
            found += word[2:].split(",")
    return [queue for queue in found if queue]


def test_compose_defines_redis_web_and_worker(services):
    assert {"redis", "web", "worker"} <= set(services)


def test_web_serves_daphne_on_the_asgi_application(services):
    words = argv(services["web"])
    script = words[-1] if words[:2] == ["sh", "-c"] else shlex.join(words)
    daphne = [shlex.split(cmd) for cmd in re.split(r"&&|;", script) if "daphne" in cmd]
    assert daphne, "web does not run daphne"
    daphne_words = daphne[-1][daphne[-1].index("daphne"):]
    assert daphne_words[-1] == "webapp.asgi:application"
    assert daphne_words[daphne_words.index("-p") + 1] == "8000"
    assert any(str(port).endswith(":8000") for port in services["web"]["ports"])


def test_web_migrates_before_starting_daphne(services):
    script = " ".join(argv(services["web"]))
    assert "manage.py migrate" in script
    assert script.index("manage.py migrate") < script.index("daphne")


def test_every_worker_runs_the_celery_app_and_consumes_a_queue(workers):
    for name, service in workers.items():
        words = argv(service)
        assert words[:4] == ["celery", "-A", "celery_app", "worker"], name
        assert queues(words), f"{name} consumes no queue"


def test_workers_cover_the_default_log_and_feed_queues(workers):
    consumed = {queue for service in workers.values() for queue in queues(argv(service))}
    assert {"tailf", "feeds"} <= consumed


def test_second_log_host_worker_consumes_its_own_queue(workers):
    assert queues(argv(workers["worker-b"])) == ["tailf.host-b"]


def test_every_worker_mounts_its_logs_read_only(workers):
    for name, service in workers.items():
        volumes = service.get("volumes") or []
        assert volumes, f"{name} mounts no log folder"
        for volume in volumes:
            if isinstance(volume, str):
                parts = volume.split(":")
                assert len(parts) >= 3 and "ro" in parts[-1].split(","), f"{name}: {volume}"
            else:
                assert volume.get("read_only") is True, volume


def test_log_roots_are_exactly_the_workers_read_only_log_mounts(workers):
    for name, service in workers.items():
        roots = service["environment"]["LOG_ROOTS"].split(":")
        mounts = [volume.rsplit(":", 2)[1] for volume in service["volumes"]]
        assert all(any(mount == root or mount.startswith(root + "/") for root in roots)
                   for mount in mounts), (name, roots, mounts)
        assert "/var/log" not in roots and "/" not in roots


def test_secrets_come_from_interpolation_not_literals(services):
    seen = set()
    for name, service in services.items():
        env = environment(service)
        for key in SECRETS:
            if key in env:
                seen.add(key)
                match = INTERPOLATED.match(env[key])
                assert match and match["name"] == key, f"{name}: {key}={env[key]!r}"
                assert ":?" in env[key], f"{name}: {key} must be required, not defaulted"
        url = env.get("DATABASE_URL", "")
        if "@" in url:
            password = url.split("://", 1)[1].rsplit("@", 1)[0].partition(":")[2]
            assert INTERPOLATED.match(password), f"{name}: literal password in DATABASE_URL"
    assert seen == set(SECRETS)
    assert "django-insecure" not in COMPOSE.read_text()


def test_dockerfile_switches_to_a_non_root_user_before_cmd(instructions):
    keywords = [keyword for keyword, _ in instructions]
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users, "the Dockerfile has no USER line"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert len(keywords) - 1 - keywords[::-1].index("USER") < keywords.index("CMD")


def test_dockerfile_default_command_is_daphne(instructions):
    cmd = [args for keyword, args in instructions if keyword == "CMD"][-1]
    words = json.loads(cmd) if cmd.startswith("[") else shlex.split(cmd)
    assert words[0] == "daphne"
    assert words[-1] == "webapp.asgi:application"


def test_dockerfile_does_not_bake_in_a_secret_key(instructions):
    for keyword, args in instructions:
        if keyword in ("ENV", "ARG"):
            assert "SECRET_KEY" not in args, f"{keyword} {args}"


def test_a_beat_service_schedules_the_alert_supervisor_whose_queue_a_worker_consumes(services,
                                                                                     workers):
    beats = [name for name, service in services.items()
             if argv(service)[:4] == ["celery", "-A", "celery_app", "beat"]]
    assert len(beats) == 1
    consumed = {queue for service in workers.values() for queue in queues(argv(service))}
    assert {"alerts", "tailf.alerts", "feeds.alerts"} <= consumed
