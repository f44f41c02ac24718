"""Per-line values on `lines` frames: each frame names the cursor of its last line and the
levels of its lines, however the lines are cut into frames or held back by flow control."""

import json

from tests.unit.test_flow_control import RecordingLayer
from webapp.streams import protocol
from webapp.streams.flow import Output


async def test_each_frame_carries_the_cursor_of_its_last_line_when_held_back_by_credit():
    layer = RecordingLayer()
    out = Output(layer, "c", window=1, buffer_lines=1000)
    await out.send_lines(["a", "b"], cursors=["c-a", "c-b"], levels=["error", None])
    await out.send_lines(["c", "d", "e"], cursors=["c-c", "c-d", "c-e"],
                         levels=[None, None, "warn"])
    await out.acknowledge(0)
    frames = layer.frames()
    assert [(f["lines"], f["cursor"]) for f in frames] == [(["a", "b"], "c-b"),
                                                           (["c", "d", "e"], "c-e")]
    assert frames[0]["levels"] == ["error", ""] and frames[1]["levels"] == ["", "", "warn"]


async def test_lines_without_values_after_some_with_them_carry_none():
    layer = RecordingLayer()
    out = Output(layer, "c", window=1, buffer_lines=1000)
    await out.send_lines(["a"], cursors=["c-a"], levels=[None])
    await out.send_lines(["plain"])
    await out.acknowledge(0)
    first, second = layer.frames()
    assert first["cursor"] == "c-a" and "levels" not in first
    assert second["lines"] == ["plain"] and "cursor" not in second and "levels" not in second


async def test_dropped_lines_take_their_values_with_them():
    layer = RecordingLayer()
    out = Output(layer, "c", window=1, buffer_lines=3)
    await out.send_lines(["a"], cursors=["1"])
    await out.send_lines(["b", "c", "d", "e"], cursors=["2", "3", "4", "5"])
    await out.acknowledge(0)
    frames = layer.frames()
    assert frames[1] == {"type": "dropped", "count": 1}
    assert (frames[2]["lines"], frames[2]["cursor"]) == (["c", "d", "e"], "5")


def test_a_batch_cut_into_frames_names_each_frames_last_cursor():
    batch = [f"{n:06d}" + "x" * 2000 for n in range(2000)]
    cursors = [f"s=1;i={n:x}" for n in range(2000)]
    levels = ["error" if n % 7 == 0 else None for n in range(2000)]
    frames = [json.loads(text) for _, _, text in protocol.lines_frames(
        batch, 0, cursors=cursors, levels=levels)]
    assert len(frames) > 2
    seen = 0
    for frame in frames:
        seen += len(frame["lines"])
        assert frame["cursor"] == cursors[seen - 1]
        assert frame["levels"] == [levels[n] or "" for n in range(seen - len(frame["lines"]),
                                                                   seen)]
    assert seen == len(batch)
