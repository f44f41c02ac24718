"""Credit-based flow control in the task's Output, and frame splitting in the protocol."""

import json

from channels.exceptions import ChannelFull

from webapp.streams import protocol
from webapp.streams.flow import Output


class RecordingLayer:
    """A channel layer that records sends and can be made full."""

    def __init__(self):
        self.sent = []
        self.full = False

    async def send(self, channel, event):
        if self.full:
            raise ChannelFull()
        self.sent.append(event)

    def frames(self):
        return [json.loads(event["text"]) for event in self.sent if "text" in event]


async def test_lines_beyond_the_window_wait_for_acks():
    layer = RecordingLayer()
    out = Output(layer, "c", window=2, buffer_lines=1000)
    for n in range(5):
        await out.send_lines([f"line {n}"])
    assert [f["lines"] for f in layer.frames()] == [["line 0"], ["line 1"]]
    await out.acknowledge(0)
    assert layer.frames()[-1]["lines"] == ["line 2", "line 3", "line 4"]
    assert out.in_flight == 2


async def test_overflow_drops_oldest_and_reports_the_count_before_the_next_lines():
    layer = RecordingLayer()
    out = Output(layer, "c", window=1, buffer_lines=3)
    await out.send_lines(["a"])
    await out.send_lines(["b", "c", "d", "e", "f"])
    assert out.dropped == 2
    await out.acknowledge(0)
    frames = layer.frames()
    assert frames[1] == {"type": "dropped", "count": 2}
    assert frames[2]["lines"] == ["d", "e", "f"]
    delivered = sum(len(f["lines"]) for f in frames if f["type"] == "lines")
    assert delivered + frames[1]["count"] == 6


async def test_a_full_channel_keeps_lines_buffered_not_lost():
    layer = RecordingLayer()
    out = Output(layer, "c", window=4, buffer_lines=100)
    layer.full = True
    await out.send_lines(["x", "y"])
    assert out.pending == ["x", "y"] and out.sent_lines == 0
    layer.full = False
    await out.send_lines(["z"])
    assert layer.frames()[0]["lines"] == ["x", "y", "z"]


async def test_acks_are_cumulative_and_never_beyond_what_was_sent():
    out = Output(RecordingLayer(), "c", window=2, buffer_lines=10)
    await out.send_lines(["a"])
    await out.acknowledge(99)
    assert out.acked == 0 and out.in_flight == 0


def test_frames_stay_under_the_size_limit_and_keep_every_line_in_order():
    batch = [f"{n:06d} " + "é" * 300 for n in range(2000)] + ["\x00" * 5000]
    frames = list(protocol.lines_frames(batch, 7, limit=64 * 1024))
    assert [seq for seq, _, _ in frames] == list(range(7, 7 + len(frames)))
    assert all(len(text.encode()) <= 64 * 1024 for _, _, text in frames)
    rebuilt = [line for _, _, text in frames for line in json.loads(text)["lines"]]
    assert rebuilt == batch


def test_one_line_larger_than_the_budget_still_gets_its_own_frame():
    frames = list(protocol.lines_frames(["z" * 70000], 0, limit=64 * 1024))
    assert len(frames) == 1 and frames[0][1] == 1


async def test_room_closes_when_the_viewer_is_behind_and_opens_on_ack():
    import asyncio

    out = Output(RecordingLayer(), "c", window=1, buffer_lines=4)
    await out.send_lines(["a"])
    assert out.has_room()
    await out.send_lines(["b", "c"])
    assert not out.has_room()
    waiter = asyncio.ensure_future(out.wait_room(timeout=5))
    await asyncio.sleep(0)
    assert not waiter.done()
    await out.acknowledge(0)
    assert await waiter is True


async def test_a_notice_after_queued_lines_waits_for_them_so_order_is_kept():
    import asyncio

    layer = RecordingLayer()
    out = Output(layer, "c", window=1, buffer_lines=100)
    await out.send_lines(["a"])
    await out.send_lines(["b"])
    notice = asyncio.ensure_future(out.notice("rotated"))
    await asyncio.sleep(0)
    assert not notice.done()
    await out.acknowledge(0)
    await notice
    assert [f.get("lines") or f.get("message") for f in layer.frames()] == [
        ["a"], ["b"], "rotated"]


async def test_lines_with_other_frame_fields_go_out_in_their_own_frames():
    layer = RecordingLayer()
    out = Output(layer, "c", window=1, buffer_lines=100)
    await out.send_lines(["a"], "f1", {"stream": "stdout"})
    await out.send_lines(["b"], "f1", {"stream": "stdout"})
    await out.send_lines(["c"], "f1", {"stream": "stderr"})
    await out.send_lines(["d"], "f2", {"stream": "stderr"})
    for seq in range(4):
        await out.acknowledge(seq)
    frames = [(f["lines"], f.get("file"), f.get("stream")) for f in layer.frames()]
    assert frames == [(["a"], "f1", "stdout"), (["b"], "f1", "stdout"),
                      (["c"], "f1", "stderr"), (["d"], "f2", "stderr")]


def test_frame_fields_count_against_the_frame_size_limit():
    batch = ["x" * 100] * 50
    frames = list(protocol.lines_frames(batch, 0, limit=1024, file="a/b/c",
                                        fields={"stream": "stderr"}))
    assert sum(count for _, count, _ in frames) == 50
    for _, _, text in frames:
        assert len(text.encode()) <= 1024
        assert json.loads(text)["stream"] == "stderr"
