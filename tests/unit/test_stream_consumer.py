"""The shared stream lifecycle: refusal codes, queued status, start and revoke."""

import asyncio
import json

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser, Group, User

from feeds.models import FeedSource
from tailf.models import LogSource
from webapp.models import Stream
from webapp.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)


def app_for(user):
    """The WebSocket router with this user in the scope (what AuthMiddleware would do)."""
    router = URLRouter(websocket_urlpatterns())

    async def application(scope, receive, send):
        return await router({**scope, "user": user}, receive, send)

    return application


async def connect(user, path):
    """Connect and return (communicator, first message)."""
    communicator = WebsocketCommunicator(app_for(user), path)
    connected, _ = await communicator.connect()
    assert connected, "the socket must be accepted before any refusal"
    return communicator, json.loads(await communicator.receive_from())


async def task_channel(fakes):
    """The channel name the started task was given (the start runs just after `queued`)."""
    import asyncio

    for _ in range(200):
        if fakes.started:
            return fakes.started[0][2]["channel_name"]
        await asyncio.sleep(0.01)
    raise AssertionError("no task was started")


async def eventually(check, timeout=5.0):
    """Poll an async or plain check until it returns true; fail after `timeout` seconds."""
    for _ in range(int(timeout / 0.02)):
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(0.02)
    raise AssertionError("the condition never held")


async def refused_with(user, path, code):
    """Assert the stream is refused with an error status and this close code."""
    communicator, message = await connect(user, path)
    assert message["type"] == "status" and message["state"] == "error"
    assert message["code"] == code
    closed = await communicator.receive_output()
    assert closed == {"type": "websocket.close", "code": code}
    return message


async def test_anonymous_user_is_refused_with_4401(fakes, log_source):
    await refused_with(AnonymousUser(), f"/ws/tailf/{log_source.pk}/", 4401)
    assert fakes.started == []


async def test_unknown_source_is_refused_with_4404(fakes, viewer):
    await refused_with(viewer, "/ws/tailf/999/", 4404)


@pytest.mark.parametrize("raw_id", ["abc", "-1", "0", "99999999999999999999999"])
async def test_malformed_ids_are_refused_with_4404_and_start_nothing(fakes, viewer, raw_id):
    await refused_with(viewer, f"/ws/tailf/{raw_id}/", 4404)
    assert fakes.started == []


async def test_disabled_source_is_refused_with_4404(fakes, viewer, log_source):
    await LogSource.objects.filter(pk=log_source.pk).aupdate(enabled=False)
    await refused_with(viewer, f"/ws/tailf/{log_source.pk}/", 4404)


async def test_user_outside_the_groups_is_refused_with_4403(fakes, log_source):
    outsider = await User.objects.acreate(username="outsider")
    await refused_with(outsider, f"/ws/tailf/{log_source.pk}/", 4403)
    assert fakes.started == []


async def test_invalid_regex_is_refused_with_4400_and_the_error_text(fakes, viewer, log_source):
    message = await refused_with(viewer, f"/ws/tailf/{log_source.pk}/?grep=%28unclosed", 4400)
    assert "grep is not a valid regular expression" in message["message"]
    assert "missing )" in message["message"]


@pytest.mark.parametrize("query", ["lines=-1", "lines=5001", "lines=ten"])
async def test_out_of_range_backlog_is_refused_with_4400(fakes, viewer, log_source, query):
    await refused_with(viewer, f"/ws/tailf/{log_source.pk}/?{query}", 4400)


async def test_too_many_streams_is_refused_with_4429(fakes, viewer, log_source, settings):
    settings.STREAM_MAX_PER_USER = 1
    first, queued = await connect(viewer, f"/ws/tailf/{log_source.pk}/")
    assert queued["state"] == "queued"
    message = await refused_with(viewer, f"/ws/tailf/{log_source.pk}/", 4429)
    assert "limit is 1" in message["message"]
    await first.disconnect()


async def test_lapsed_lease_frees_the_stream_slot(fakes, viewer, log_source, settings,
                                                  redis_client):
    settings.STREAM_MAX_PER_USER = 1
    first, queued = await connect(viewer, f"/ws/tailf/{log_source.pk}/")
    redis_client.flushdb()
    second, message = await connect(viewer, f"/ws/tailf/{log_source.pk}/")
    assert message["state"] == "queued"
    await first.disconnect()
    await second.disconnect()


async def test_queued_status_carries_the_task_id_and_starts_the_task(fakes, viewer, log_source):
    communicator, message = await connect(viewer, f"/ws/tailf/{log_source.pk}/?lines=7&grep=ERR")
    assert message["state"] == "queued" and message["task_id"]
    await task_channel(fakes)
    name, task_id, kwargs, queue = fakes.started[0]
    assert (name, task_id, queue) == ("tailf.tail_file", message["task_id"], "tailf")
    assert kwargs["options"] == {"lines": 7, "grep": "ERR"}
    assert kwargs["source_id"] == log_source.pk
    await communicator.disconnect()


async def test_disconnect_revokes_the_task_and_drops_the_lease(fakes, viewer, log_source,
                                                               redis_client):
    communicator, message = await connect(viewer, f"/ws/tailf/{log_source.pk}/")
    await communicator.disconnect()
    assert fakes.revoked == [message["task_id"]]
    assert not await asyncio.to_thread(redis_client.exists, f"tailboard:lease:{message['task_id']}")
    assert await asyncio.to_thread(redis_client.zcard, "tailboard:slots:all") == 0
    stream = await Stream.objects.aget(task_id=message["task_id"])
    assert stream.ended is not None and stream.ending == "disconnect"


async def test_stop_action_revokes_sends_stopped_and_closes_1000(fakes, viewer, log_source):
    communicator, message = await connect(viewer, f"/ws/tailf/{log_source.pk}/")
    await communicator.send_to(text_data=json.dumps({"action": "stop"}))
    stopped = json.loads(await communicator.receive_from())
    assert stopped["type"] == "status" and stopped["state"] == "stopped"
    assert await communicator.receive_output() == {"type": "websocket.close", "code": 1000}
    assert await eventually(lambda: fakes.revoked) == [message["task_id"]]

    async def ended():
        return (await Stream.objects.aget(task_id=message["task_id"])).ending

    assert await eventually(ended) == "viewer_stop"


@pytest.mark.parametrize("frame", ["[" * 5000 + "]" * 5000,
                                   '{"action": "ack", "x": ' + "[" * 5000 + "]" * 5000 + "}",
                                   json.dumps({"action": "ack", "seq": 1, "pad": "x" * 5000})],
                         ids=["deep", "deep-inside", "oversized"])
async def test_a_deep_or_oversized_client_message_ends_the_stream_with_4400(
        fakes, viewer, log_source, frame, caplog):
    import logging

    logger = logging.getLogger("tailboard")  # does not propagate to caplog's root handler
    logger.addHandler(caplog.handler)
    communicator, message = await connect(viewer, f"/ws/tailf/{log_source.pk}/")
    try:
        await communicator.send_to(text_data=frame)
        error = json.loads(await communicator.receive_from())
    finally:
        logger.removeHandler(caplog.handler)
    assert error["type"] == "status" and error["state"] == "error" and error["code"] == 4400
    assert error["message_code"] in ("message_too_deep", "message_too_large")
    assert await communicator.receive_output() == {"type": "websocket.close", "code": 4400}
    assert await eventually(lambda: fakes.revoked) == [message["task_id"]]
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text
    assert "refused a message from the browser" in caplog.text


async def test_final_frame_from_the_task_is_relayed_then_closes(fakes, viewer, log_source):
    from channels.layers import get_channel_layer

    from webapp.streams import protocol

    communicator, message = await connect(viewer, f"/ws/tailf/{log_source.pk}/")
    channel = await task_channel(fakes)
    await get_channel_layer().send(channel, protocol.frame_event(
        protocol.status("error", "feed gone"), final=True))
    relayed = json.loads(await communicator.receive_from())
    assert relayed == {"type": "status", "state": "error", "message": "feed gone"}
    assert await communicator.receive_output() == {"type": "websocket.close", "code": 4500}
    assert fakes.revoked == []


async def test_lines_relayed_are_counted_published_with_the_lease_and_recorded_at_the_end(
        fakes, viewer, log_source, settings):
    import asyncio

    from channels.layers import get_channel_layer

    from webapp.streams import leases, protocol

    settings.STREAM_LEASE_SECONDS = 3
    communicator, message = await connect(viewer, f"/ws/tailf/{log_source.pk}/")
    channel = await task_channel(fakes)
    batch = [f"line {n}" for n in range(7)]
    for seq, count, text in protocol.lines_frames(batch, 0, limit=64 * 4):
        await get_channel_layer().send(channel, protocol.data_frame_event(text, seq, count))
        relayed = json.loads(await communicator.receive_from())
        assert relayed["type"] == "lines" and len(relayed["lines"]) == count
    key = leases.sent_key(message["task_id"])
    for _ in range(int((leases.refresh_interval() + 2) / 0.05)):
        if leases.sync_client().get(key) is not None:
            break
        await asyncio.sleep(0.05)
    assert int(leases.sync_client().get(key)) == 7
    await communicator.disconnect()
    stream = await Stream.objects.aget(task_id=message["task_id"])
    assert stream.lines_sent == 7 and stream.ended is not None


async def test_a_viewer_gone_as_a_frame_is_sent_ends_the_stream_as_a_disconnect(
        fakes, viewer, log_source, monkeypatch):
    from autobahn.exception import Disconnected
    from channels.layers import get_channel_layer

    from webapp.streams import consumer as streaming
    from webapp.streams import leases, protocol

    communicator, message = await connect(viewer, f"/ws/tailf/{log_source.pk}/")
    channel = await task_channel(fakes)
    real_send = streaming.StreamConsumer.send

    async def send(self, text_data=None, bytes_data=None, close=False):
        if text_data and '"lines"' in text_data:
            raise Disconnected("Attempt to send on a closed protocol")
        await real_send(self, text_data, bytes_data, close)

    monkeypatch.setattr(streaming.StreamConsumer, "send", send)
    seq, count, text = next(protocol.lines_frames(["x"], 0))
    await get_channel_layer().send(channel, protocol.data_frame_event(text, seq, count))
    for _ in range(100):
        stream = await Stream.objects.aget(task_id=message["task_id"])
        if stream.ended:
            break
        await asyncio.sleep(0.02)
    assert stream.ending == "disconnect" and "dropped" in stream.end_reason
    assert fakes.revoked == [message["task_id"]]
    assert not leases.sync_client().exists(leases.lease_key(message["task_id"]))


async def test_feed_ids_use_their_own_sequence(fakes, viewer, log_source):
    await refused_with(viewer, f"/ws/feeds/{log_source.pk}/", 4404)
    feed = await FeedSource.objects.acreate(name="news", url="http://127.0.0.1:9/feed.xml")
    await refused_with(viewer, f"/ws/feeds/{feed.pk}/", 4403)


async def test_feed_entries_option_is_range_checked(fakes, viewer):
    feed = await FeedSource.objects.acreate(name="news", url="http://127.0.0.1:9/feed.xml")
    await feed.groups.aadd(await Group.objects.aget(name="ops"))
    await refused_with(viewer, f"/ws/feeds/{feed.pk}/?entries=101", 4400)
    communicator, message = await connect(viewer, f"/ws/feeds/{feed.pk}/?entries=3")
    assert message["state"] == "queued"
    assert fakes.started[0][2]["options"] == {"entries": 3}
    await communicator.disconnect()


@pytest.mark.parametrize("raw_id", ["1_0", "+1", "١", "01", " 1"])
async def test_ids_int_would_accept_but_are_not_plain_digits_get_4404(fakes, viewer, raw_id):
    from urllib.parse import quote

    await refused_with(viewer, f"/ws/tailf/{quote(raw_id)}/", 4404)
    assert fakes.started == []


@pytest.mark.parametrize("error, text, retry", [
    (ValueError("a plain bug"), "server error; see the server log", True),
    (__import__("redis").exceptions.ConnectionError("Connection refused"),
     "lost contact with Redis: Connection refused", True),
])
async def test_a_failure_under_a_live_stream_says_honestly_what_failed(
        fakes, viewer, log_source, monkeypatch, error, text, retry, settings):
    from channels.layers import get_channel_layer

    from webapp.streams import protocol, records

    settings.RAISE_CONTAINED_ERRORS = False  # production's path; the suite raises a bug

    def broken(stream_id, worker):
        raise error

    import logging

    seen = []
    handler = logging.Handler()
    handler.emit = seen.append
    logging.getLogger("tailboard.streams").addHandler(handler)
    monkeypatch.setattr(records, "set_worker", broken)
    communicator, message = await connect(viewer, f"/ws/tailf/{log_source.pk}/")
    channel = await task_channel(fakes)
    await get_channel_layer().send(channel, protocol.frame_event(
        protocol.status("running", "following app", worker="w1")))
    told = json.loads(await communicator.receive_from())
    if told.get("state") == "running":  # relayed before the record is written
        told = json.loads(await communicator.receive_from())
    assert told.items() >= {"type": "status", "state": "error", "message": text,
                            "retry": retry}.items()
    assert told["message_code"] in ("server_error", "redis_lost")
    assert await communicator.receive_output() == {"type": "websocket.close", "code": 4500}
    stream = await Stream.objects.aget(task_id=message["task_id"])
    assert stream.ending == "error" and stream.ended is not None
    assert fakes.revoked == [message["task_id"]]
    logging.getLogger("tailboard.streams").removeHandler(handler)
    errors = [record for record in seen if record.levelno >= logging.ERROR]
    assert errors and (errors[0].exc_info is not None) == isinstance(error, ValueError)


async def test_lines_sent_are_published_within_a_second_not_only_at_lease_renewal(
        fakes, viewer, log_source, settings):
    from channels.layers import get_channel_layer

    from webapp.streams import leases, protocol

    settings.STREAM_LEASE_SECONDS = 30  # renewal every 10 s: far later than this test
    communicator, message = await connect(viewer, f"/ws/tailf/{log_source.pk}/")
    channel = await task_channel(fakes)
    for seq, count, text in protocol.lines_frames(["a", "b", "c"], 0):
        await get_channel_layer().send(channel, protocol.data_frame_event(text, seq, count))
        await communicator.receive_from()
    key = leases.sent_key(message["task_id"])
    assert int(await eventually(lambda: leases.sync_client().get(key), timeout=1.5)) == 3
    await communicator.disconnect()
