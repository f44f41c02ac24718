"""Unit-test fixtures: a real Redis (flushed per test), the channel layer in memory, Celery's
task control recorded instead of sent."""

import pytest
from django.contrib.auth.models import Group, User


@pytest.fixture(autouse=True)
def in_memory_layer(settings):
    """Use Channels' in-memory layer so consumers run without Redis."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


class FakeControl:
    """Records task starts and revokes instead of talking to Celery."""

    started = []
    revoked = []

    def start(self, task, task_id, kwargs, queue):
        self.started.append((task.name, task_id, kwargs, queue))

    def revoke(self, task_id):
        self.revoked.append(task_id)


@pytest.fixture
def fakes(monkeypatch, redis_client):
    """Record Celery starts and revokes for the stream consumers (leases in the real Redis)."""
    from webapp.streams import consumer as streaming

    FakeControl.started = []
    FakeControl.revoked = []
    monkeypatch.setattr(streaming.StreamConsumer, "control_class", FakeControl)
    return FakeControl


@pytest.fixture
def viewer(db):
    """A user in group ops."""
    group = Group.objects.create(name="ops")
    user = User.objects.create_user("viewer", password="x")
    user.groups.add(group)
    return user


@pytest.fixture
def log_source(viewer):
    """A log source shared with group ops."""
    from tailf.models import LogSource

    source = LogSource.objects.create(name="app", path="/var/log/app.log")
    source.groups.add(Group.objects.get(name="ops"))
    return source


@pytest.fixture
def follower(tmp_path):
    """Factory: `follower(path, **options)`, a Follower confined to tmp_path, closed after."""
    from tailf.follow import Follower

    made = []

    def make(path, **options):
        options.setdefault("roots", [str(tmp_path)])
        made.append(Follower(str(path), **options))
        return made[-1]

    yield make
    for each in made:
        each.close()
