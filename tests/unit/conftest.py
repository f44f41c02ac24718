"""Unit-test fixtures: no services; the channel layer is in memory, Celery and Redis faked."""

import pytest
from django.contrib.auth.models import Group, User


@pytest.fixture(autouse=True)
def in_memory_layer(settings):
    """Use Channels' in-memory layer so consumers run without Redis."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


class FakeRedis:
    """The few async Redis calls the lease code makes, kept in a dict."""

    store = {}

    async def set(self, key, value, ex=None):
        self.store[key] = value

    async def delete(self, key):
        self.store.pop(key, None)

    async def exists(self, key):
        return int(key in self.store)

    async def hgetall(self, key):
        return {}

    async def aclose(self):
        return None


class FakeControl:
    """Records task starts and revokes instead of talking to Celery."""

    started = []
    revoked = []

    def start(self, task, task_id, kwargs, queue):
        self.started.append((task.name, task_id, kwargs, queue))

    def revoke(self, task_id):
        self.revoked.append(task_id)


@pytest.fixture
def fakes(monkeypatch):
    """Fake Celery control and lease Redis for the stream consumers; returns the recorders."""
    from webapp import leases, streaming

    FakeRedis.store = {}
    FakeControl.started = []
    FakeControl.revoked = []
    monkeypatch.setattr(leases, "async_client", FakeRedis)
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
