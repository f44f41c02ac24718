"""Container log records: the CRI and Docker json-file parsers, with hostile input."""

import json

from containers.records import CriParser, DockerParser
from tailf.follow import CUT_MARKER

T = "2026-12-06T15:12:34.917598233+00:00"


def test_cri_full_lines_keep_stream_and_show_time_then_message():
    records = CriParser().feed([f"{T} stdout F hello", f"{T} stderr F boom",
                                "2026-12-06T15:12:35.1Z stdout F with Z"])
    assert [(r.stream, r.line, r.message) for r in records] == [
        ("stdout", f"{T} hello", "hello"), ("stderr", f"{T} boom", "boom"),
        ("stdout", "2026-12-06T15:12:35.1Z with Z", "with Z")]


def test_cri_partials_are_joined_per_stream_and_take_the_last_parts_time():
    records = CriParser().feed([f"{T} stdout P par", f"{T} stderr F err",
                                f"{T} stdout P t-", "2026-12-06T15:12:36Z stdout F end"])
    assert [(r.stream, r.message) for r in records] == [("stderr", "err"),
                                                       ("stdout", "part-end")]
    assert records[1].line == "2026-12-06T15:12:36Z part-end"


def test_cri_partials_survive_across_feeds_and_extra_tags_are_read():
    parser = CriParser()
    assert parser.feed([f"{T} stdout P a"]) == []
    assert [r.message for r in parser.feed([f"{T} stdout F:x b"])] == ["ab"]


def test_cri_empty_message_is_an_empty_line():
    assert [r.message for r in CriParser().feed([f"{T} stdout F", f"{T} stdout F "])] == ["", ""]


def test_malformed_cri_lines_are_delivered_whole_as_stdout_and_break_nothing():
    hostile = ["not a record", f"{T} stdnot F x", f"{T} stdout Q x", "2026-13-99 stdout F x",
               f"{T}stdout F x", "\x00\x1b[31m", ""]
    parser = CriParser()
    records = parser.feed([f"{T} stdout P a"] + hostile + [f"{T} stdout F b"])
    assert [(r.stream, r.line) for r in records[:-1]] == [("stdout", line) for line in hostile]
    assert records[-1].message == "ab"


def test_a_huge_cri_partial_chain_is_cut_at_the_line_cap():
    parser = CriParser(max_line=64 * 1024)
    part = "x" * 16 * 1024
    for _ in range(1000):
        assert parser.feed([f"{T} stdout P {part}"]) == []
        assert parser.joiners["stdout"].size <= 64 * 1024
    (record,) = parser.feed([f"{T} stdout F tail"])
    assert record.message == "x" * 64 * 1024 + CUT_MARKER.format(limit=64 * 1024)
    assert [r.message for r in parser.feed([f"{T} stdout F next"])] == ["next"]


def docker_line(log, stream="stdout", time="2026-12-06T15:12:34.917598233Z"):
    """One json-file line as dockerd writes it (Go's encoder: <, >, & escaped)."""
    text = json.dumps({"log": log, "stream": stream, "time": time}, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def test_docker_lines_keep_stream_and_the_16k_splits_are_joined():
    first, second = "a" * 16384, "b" * 16384
    records = DockerParser().feed([docker_line(first), docker_line("err <&>\n", "stderr"),
                                   docker_line(second), docker_line("c\n")])
    assert [(r.stream, r.message) for r in records] == [
        ("stderr", "err <&>"), ("stdout", first + second + "c")]
    assert records[0].line == "2026-12-06T15:12:34.917598233Z err <&>"


def test_invalid_docker_json_is_delivered_whole_and_breaks_nothing():
    hostile = ['{"log":"x\\n","stream":"stdout"', "[1,2]", '{"log":5,"stream":"stdout",'
               '"time":"2026-12-06T15:12:34Z"}', '{"log":"x\\n","stream":"stdfoo","time":'
               '"2026-12-06T15:12:34Z"}', '{"log":"x\\n","stream":"stdout","time":"yesterday"}',
               '{"a":' * 100000]
    parser = DockerParser()
    records = parser.feed([docker_line("a")] + hostile + [docker_line("b\n")])
    assert [r.line for r in records[:-1]] == hostile
    assert records[-1].message == "ab"


def test_a_huge_docker_split_chain_is_cut_at_the_line_cap():
    parser = DockerParser(max_line=64 * 1024)
    for _ in range(200):
        parser.feed([docker_line("y" * 16384)])
    (record,) = parser.feed([docker_line("z\n")])
    assert len(record.message) == 64 * 1024 + len(CUT_MARKER.format(limit=64 * 1024))


def test_view_shows_one_stored_record_as_the_stream_does():
    assert CriParser().view(f"{T} stderr P part") == ("part", f"{T} part")
    assert DockerParser().view(docker_line("x\n")) == ("x", "2026-12-06T15:12:34.917598233Z x")
    assert CriParser().view("junk") == ("junk", "junk")
