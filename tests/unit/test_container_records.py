"""Container log records: the CRI and Docker json-file parsers, with hostile input."""

import json

from containers.records import STREAMS, CriParser, DockerParser
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
    hostile = ["not a record", f"{T} stdnot F x", f"{T} stdout Q x", "yesterday stdout F x",
               "2026-12-06 15:12:34Z stdout F x", f"{T}stdout F x", "\x00\x1b[31m", "",
               " stdout F x"]
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


def test_the_fast_path_gives_what_the_record_parser_gives_for_any_mix():
    import random

    from containers.records import runs_of

    rng = random.Random(7)
    pieces = [f"{T} stdout F a b", f"{T} stderr F c", f"{T} stdout P part ", f"{T} stdout F",
              "junk line", f"{T} stdout F two stdout F markers", "2026-12-06 15:12:34Z stdout F s",
              f"x{T} stdout F y", f"{T} stderr F:x tagged", docker_line("d\n"),
              docker_line("e\n", "stderr"), docker_line("split"), '{"log":"x\\n"}',
              docker_line("crlf\r\n"), '"a string"', "yesterday stdout F y",
              docker_line("t\n", time="2026 12"), docker_line("t\n", time="")]
    whole = [f"{T} stdout F a b", f"{T} stderr F c", f"{T} stdout F two stdout F markers",
             docker_line("d\n"), docker_line("e\n", "stderr")]
    for parser_class in (CriParser, DockerParser):
        for round_ in range(400):
            pool = whole if round_ % 2 else pieces  # half the batches can take the fast path
            batch = [rng.choice(pool) for _ in range(rng.randint(1, 12))]
            fast, slow = parser_class(), parser_class()
            got = [(run.stream, line, message) for run in fast.feed_runs(batch)
                   for line, message in zip(run.lines, run.message_list(), strict=True)]
            want = [(run.stream, line, message) for run in runs_of(slow.feed(batch))
                    for line, message in zip(run.lines, run.messages, strict=True)]
            assert got == want, batch
            assert [j.parts for j in fast.joiners.values()] == \
                [j.parts for j in slow.joiners.values()]


def test_the_fast_path_merges_fast_turns_as_the_record_parser_does_for_any_limit():
    import random

    from containers.records import merge_streams, runs_of

    rng = random.Random(11)
    for parser_class, line in ((CriParser, lambda s, n: f"{T} {s} F {n}"),
                               (DockerParser, lambda s, n: docker_line(f"{n}\n", s))):
        for _ in range(500):
            batch = [line(rng.choice(STREAMS) if rng.random() < 0.5 else "stdout", n)
                     for n in range(rng.randint(1, 40))]
            limit = rng.choice([None, 1, 2, 3, 4, 8])
            got = parser_class().feed_runs(batch, limit=limit)
            want = merge_streams(runs_of(parser_class().feed(batch)), limit)
            assert [(r.stream, r.lines, r.message_list()) for r in got] == \
                [(r.stream, r.lines, r.message_list()) for r in want], (batch, limit)


def test_the_fast_path_refuses_what_the_record_parser_shows_raw():
    for batch in ([docker_line("t\n", time="")], [docker_line("t\n", time="12 34")],
                  [docker_line("t\n", time="12\n34")], ["2026\n12 stdout F x"],
                  [" stdout F x"], ["2026-12-06T15:12:34Z\tstdout F x"], ["yes stdout F x"]):
        parser = DockerParser() if batch[0].startswith("{") else CriParser()
        assert parser.fast_split(batch) is None, batch
        assert [r.line for r in parser.feed(batch)] == batch


def test_the_fast_path_is_taken_for_whole_records_and_keeps_streams_apart():
    runs = CriParser().feed_runs([f"{T} stdout F a", f"{T} stdout F b", f"{T} stderr F c"])
    assert [(run.stream, run.lines, run.messages) for run in runs] == [
        ("stdout", [f"{T} a", f"{T} b"], None), ("stderr", [f"{T} c"], None)]
    runs = DockerParser().feed_runs([docker_line("a\n"), docker_line("b\n", "stderr")])
    assert [(run.stream, run.messages) for run in runs] == [("stdout", None), ("stderr", None)]


def test_the_fast_path_agrees_with_the_record_parser_on_mutated_heads():
    import random

    from containers.records import runs_of

    rng = random.Random(23)
    messages = ["m", "", " stdout F again", " stderr F again", "x stdout F", "\r", "é ü"]
    swaps = list(" \nxoeurtdsFP0:T+-Z.\t") + ["oo", ""]
    taken = 0
    for _ in range(3000):
        batch = []
        for _ in range(rng.randint(1, 10)):
            line = f"{T} {rng.choice(STREAMS)} F {rng.choice(messages)}"
            if rng.random() < 0.1:  # one character of the head changed, added or dropped
                place = rng.randrange(len(T) + 11)
                line = line[:place] + rng.choice(swaps) + line[place + 1:]
            batch.append(line)
        taken += CriParser().fast_split(batch) is not None
        got = [(run.stream, line, message) for run in CriParser().feed_runs(batch)
               for line, message in zip(run.lines, run.message_list(), strict=True)]
        want = [(run.stream, line, message) for run in runs_of(CriParser().feed(batch))
                for line, message in zip(run.lines, run.messages, strict=True)]
        assert got == want, batch
    assert taken > 500  # the fast path took many batches, mutated ones included
