"""The stream contract every registered source kind keeps, run once per kind (like
django.contrib.sessions' one test mixin for every backend): refusal codes, start on the
source's queue, stop, revoke on disconnect, and relayed framing."""

import json

import pytest
from channels.layers import get_channel_layer
from django.contrib.auth.models import AnonymousUser, Group, User

from tests.unit.test_stream_consumer import connect, eventually, refused_with, task_channel
from webapp.models import Stream
from webapp.streams import leases, protocol
from webapp.streams.kinds import all_kinds, get

pytestmark = pytest.mark.django_db(transaction=True)


class KindContract:
    """What every kind must do; a subclass names the kind and makes one of its sources."""

    slug = None
    bad_query = None

    def make_source(self, **fields):
        """Return a saved source of this kind shared with group ops."""
        raise NotImplementedError

    @property
    def kind(self):
        """The registered kind under test."""
        return get(self.slug)

    def path(self, source_id, query=""):
        """The WebSocket path of a source of this kind."""
        return f"/ws/{self.kind.url}/{source_id}/{query}"

    def test_what_a_source_reads_is_named_by_fields_of_its_model(self):
        model_fields = {field.name for field in self.kind.source_model._meta.get_fields()}
        assert "queue" in self.kind.location
        assert set(self.kind.location) <= model_fields
        assert not {"name", "enabled", "groups"} & set(self.kind.location)

    async def test_anonymous_is_refused_with_4401(self, fakes, viewer):
        source = await self.asource()
        await refused_with(AnonymousUser(), self.path(source.pk), 4401)
        assert fakes.started == []

    async def test_unknown_and_disabled_sources_are_refused_with_4404(self, fakes, viewer):
        await refused_with(viewer, self.path(987654), 4404)
        source = await self.asource(enabled=False)
        await refused_with(viewer, self.path(source.pk), 4404)

    async def test_a_user_outside_the_groups_is_refused_with_4403(self, fakes, viewer):
        source = await self.asource()
        outsider = await User.objects.acreate(username="outsider")
        await refused_with(outsider, self.path(source.pk), 4403)

    async def test_a_bad_option_is_refused_with_4400(self, fakes, viewer):
        source = await self.asource()
        message = await refused_with(viewer, self.path(source.pk, self.bad_query), 4400)
        assert message["message"].startswith("bad option:")

    async def test_queued_names_the_task_started_on_the_source_queue(self, fakes, viewer):
        source = await self.asource()
        communicator, queued = await connect(viewer, self.path(source.pk))
        assert queued["state"] == "queued" and queued["queue"] == source.queue
        await task_channel(fakes)
        name, task_id, kwargs, queue = fakes.started[0]
        assert (name, task_id, queue) == (self.kind.task.name, queued["task_id"], source.queue)
        assert kwargs["source_id"] == source.pk
        record = await Stream.objects.aget(task_id=task_id)
        assert record.kind == self.slug and record.ended is None
        await communicator.disconnect()

    async def test_stop_revokes_says_stopped_and_closes_1000(self, fakes, viewer):
        source = await self.asource()
        communicator, queued = await connect(viewer, self.path(source.pk))
        await communicator.send_to(text_data=json.dumps({"action": "stop"}))
        stopped = json.loads(await communicator.receive_from())
        assert (stopped["type"], stopped["state"]) == ("status", "stopped")
        assert await communicator.receive_output() == {"type": "websocket.close", "code": 1000}
        assert await eventually(lambda: fakes.revoked) == [queued["task_id"]]

        async def ending():
            return (await Stream.objects.aget(task_id=queued["task_id"])).ending

        assert await eventually(ending) == "viewer_stop"

    async def test_disconnect_revokes_and_drops_the_lease(self, fakes, viewer, redis_client):
        source = await self.asource()
        communicator, queued = await connect(viewer, self.path(source.pk))
        assert redis_client.exists(leases.lease_key(queued["task_id"]))
        await communicator.disconnect()
        assert fakes.revoked == [queued["task_id"]]
        assert not redis_client.exists(leases.lease_key(queued["task_id"]))

    async def test_task_frames_are_relayed_and_a_final_one_closes(self, fakes, viewer):
        source = await self.asource()
        communicator, queued = await connect(viewer, self.path(source.pk))
        channel = await task_channel(fakes)
        batch = ["x" * 300_000] * 8
        seen = 0
        for seq, count, text in protocol.lines_frames(batch, 0):
            assert len(text.encode()) <= protocol.MAX_FRAME_BYTES
            await get_channel_layer().send(channel, protocol.data_frame_event(text, seq, count))
            frame = json.loads(await communicator.receive_from())
            assert frame["seq"] == seq
            seen += len(frame["lines"])
        assert seen == len(batch)
        await get_channel_layer().send(channel, protocol.frame_event(
            protocol.status("stopped", "done"), final=True, ending="source_ended"))
        assert json.loads(await communicator.receive_from())["state"] == "stopped"
        assert await communicator.receive_output() == {"type": "websocket.close", "code": 1000}
        assert fakes.revoked == []
        record = await Stream.objects.aget(task_id=queued["task_id"])
        assert record.ending == "source_ended"

    async def asource(self, **fields):
        """make_source() from async code."""
        from asgiref.sync import sync_to_async

        return await sync_to_async(self.make_source)(**fields)


def shared(source):
    """Share a source with group ops and return it."""
    source.groups.add(Group.objects.get(name="ops"))
    return source


class TestLogKind(KindContract):
    """The log kind keeps the contract."""

    slug = "log"
    bad_query = "?grep=("

    def make_source(self, **fields):
        """A log source under the default log root."""
        model = get("log").source_model
        return shared(model.objects.create(name=f"log-{model.objects.count()}",
                                           path="/var/log/app.log", **fields))


class TestFeedKind(KindContract):
    """The feed kind keeps the contract."""

    slug = "feed"
    bad_query = "?entries=1000"

    def make_source(self, **fields):
        """A feed source on a local URL."""
        model = get("feed").source_model
        return shared(model.objects.create(name=f"feed-{model.objects.count()}",
                                           url="http://127.0.0.1:9/feed.xml", **fields))


class TestJournalKind(KindContract):
    """The journal kind keeps the contract."""

    slug = "journal"
    bad_query = "?after=s%3D1%3Bi%3D2%27%3Bdrop"

    def make_source(self, **fields):
        """A journal source under the default log root."""
        model = get("journal").source_model
        return shared(model.objects.create(name=f"journal-{model.objects.count()}",
                                           directory="/var/log/journal",
                                           units=["nginx.service"], **fields))


class TestContainerKind(KindContract):
    """The container kind keeps the contract."""

    slug = "container"
    bad_query = "?search=(&rotated=1"

    def make_source(self, **fields):
        """A Kubernetes/CRI container source under the default log root."""
        model = get("container").source_model
        return shared(model.objects.create(name=f"container-{model.objects.count()}",
                                           namespace="shop", pod="web-*", **fields))


def test_every_registered_kind_has_a_contract_test():
    tested = {cls.slug for cls in KindContract.__subclasses__()}
    assert {kind.slug for kind in all_kinds()} <= tested
