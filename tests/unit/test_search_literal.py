"""The required-literal prefilter: what `required_literals` takes from a pattern, and that a
search skipping to the literal finds exactly what the search without it finds. What the
prefilter saves in CPU time is measured by bench/literal_bench.py."""

import codecs
import random
import time

import pytest
import re2

from tailf import literal as literal_module
from tailf import search as search_module
from tailf.follow import CUT_MARKER
from tailf.literal import LiteralFinder, required_literals
from tailf.search import Search
from tests.prefilter import search_all


@pytest.mark.parametrize("pattern, expected", [
    ("FATAL-TOKEN-[0-9]", ["FATAL-TOKEN-"]),
    (r"ERROR 5\d\d upstream", [" upstream", "ERROR 5"]),
    ("abc|abd", ["ab"]),  # Python's parser factors the common prefix out, exactly
    ("(ab)+c", ["ab", "c"]),
    ("(?:ab)?cd", ["cd"]),
    ("x(?P<name>yz)w", ["xyzw"]),
    (r"a\bb", ["a", "b"]),
    (r"\x41BC", ["ABC"]),
    ("é+日本", ["日本", "é"]),
    ("^start", ["start"]),
    ("end$", ["end"]),
    (r"a\nb", ["a", "b"]),
    ("a\ufffdb", ["a", "b"]),  # a replacement character may stand for undecodable bytes
    ("a(?i:b)c", ["a", "c"]),
])
def test_the_literals_every_match_holds_are_found(pattern, expected):
    assert required_literals(re2.compile(pattern)) == expected


@pytest.mark.parametrize("pattern", [
    "(?i)error", "a|b", "(ab|cd)", "x?", "(?:ab)*", "[ab]", ".*", r"\d+", "",
    "[[:alpha:]]x",  # a POSIX class in RE2, a set and a literal "]" to Python
    "x{,3}",  # literal text in RE2, a repetition to Python
    r"\pLx", r"\p{Greek}", r"\Qa.b\E", r"\x{41}", r"end\z", r"\C",  # RE2 only
    r"\0", r"\12",  # octal in RE2
])
def test_patterns_it_cannot_read_safely_give_no_literal(pattern):
    assert required_literals(re2.compile(pattern)) == []


def test_options_other_than_the_defaults_give_no_literal():
    for name, value in [("case_sensitive", False), ("literal", True), ("never_nl", True)]:
        options = re2.Options()
        setattr(options, name, value)
        assert required_literals(re2.compile("abc", options)) == [], name
    options = re2.Options()
    options.encoding = re2.Options.Encoding.LATIN1
    assert required_literals(re2.compile(b"abc", options)) == []
    quiet = re2.Options()
    quiet.log_errors = False
    assert required_literals(re2.compile("abc", quiet)) == ["abc"]


def test_the_finder_looks_for_the_rarest_byte_and_switches_to_re2_when_it_is_common():
    finder = LiteralFinder(["x-yz", "a-b-c"])
    first = b"xx-yz a-b-c\n"
    assert finder.find(first, 0, len(first)) == 6
    assert (finder.literal, finder.rare) == (b"a-b-c", b"a")
    assert finder.regex is None
    data = b"ab-" * 20000 + b"\na-b-c\n"
    assert finder.find(data, 0, len(data)) == len(data) - 6
    assert finder.regex is not None
    assert finder.find(data, len(data) - 5, len(data)) == -1


# --- random patterns and texts: the prefilter changes nothing ---------------------------------

PIECES = ["FATAL", "-", "TOKEN", "x", "é", "日本", "ab", " ", "42", "q", "Z", "😀", "\t", ".",
          "\ufffd"]


class Node:
    """A piece of pattern that can also make a text it matches."""

    def __init__(self, source, sample):
        self.source, self.sample = source, sample


def literal(rng):
    text = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 3)))
    return Node(re2.escape(text) if rng.random() < 0.5 else _plain_escape(text),
                lambda rng: text)


def _plain_escape(text):
    return "".join("\\" + char if char in ".-" else char for char in text)


CLASSES = [("[0-9]", "0123456789"), (r"\d", "0123456789"), ("[a-z]", "abcxyz"),
           (r"\w", "aZ_9é"), (".", "a .-é日"), ("[^x]", "aé -"), (r"\s", " \t"),
           ("[[:alpha:]]", "aQ"), (r"\pL", "aé"), (r"\p{Greek}", "αβ"), (r"\x{41}", "A"),
           (r"\Qa.b\E", None), ("x{,2}", None), ("[T]", "T")]


def char_class(rng):
    source, chars = rng.choice(CLASSES)
    if chars is None:  # RE2's literal text
        text = {"\\Qa.b\\E": "a.b", "x{,2}": "x{,2}"}[source]
        return Node(source, lambda rng: text)
    return Node(source, lambda rng: rng.choice(chars))


def node(rng, depth=0):
    roll = rng.random() if depth < 3 else rng.random() * 0.5
    if roll < 0.3:
        return literal(rng)
    if roll < 0.5:
        return char_class(rng)
    if roll < 0.65:
        parts = [node(rng, depth + 1) for _ in range(rng.randint(2, 3))]
        return Node("".join(part.source for part in parts),
                    lambda rng: "".join(part.sample(rng) for part in parts))
    if roll < 0.75:
        parts = [node(rng, depth + 1) for _ in range(2)]
        return Node("(?:" + "|".join(part.source for part in parts) + ")",
                    lambda rng: rng.choice(parts).sample(rng))
    if roll < 0.88:
        body = node(rng, depth + 1)
        low, high, text = rng.choice([(0, 1, "?"), (0, 2, "*"), (1, 3, "+"), (2, 2, "{2}"),
                                      (1, 2, "{1,2}"), (0, 2, "{0,2}"), (1, 2, "+?")])
        return Node("(?:" + body.source + ")" + text,
                    lambda rng: "".join(body.sample(rng) for _ in range(rng.randint(low, high))))
    if roll < 0.93:
        body = node(rng, depth + 1)
        return Node("(?i:" + body.source + ")", lambda rng: _flip_case(rng, body.sample(rng)))
    if roll < 0.97:
        body = node(rng, depth + 1)
        return Node("(" + body.source + ")", body.sample)
    return Node(rng.choice([r"\b", r"\B"]), lambda rng: "")


def _flip_case(rng, text):
    return "".join(char.swapcase() if rng.random() < 0.5 else char for char in text)


def random_pattern(rng):
    """A pattern and a sampler of texts it may match (anchors can spoil a sample)."""
    top = node(rng)
    source, sample = top.source, top.sample
    roll = rng.random()
    if roll < 0.1:
        other = node(rng)
        source, sample = source + "|" + other.source, \
            lambda rng, a=top, b=other: rng.choice([a, b]).sample(rng)
    elif roll < 0.2:
        source, sample = "(?i)" + source, lambda rng, a=top: _flip_case(rng, a.sample(rng))
    elif roll < 0.3:
        source = "^" + source
    elif roll < 0.4:
        source = source + "$"
    return source, sample


NOISE = ["error", "FATAL", "TOKEN-", "-", "x", "é", "日本", "ab", " ", "42", "\t", "Zq",
         "😀", "a.b", "x{,2}", "A", "αβ"]


def random_line(rng, sample):
    parts = [rng.choice(NOISE) for _ in range(rng.randint(0, 5))]
    if rng.random() < 0.4:
        parts.insert(rng.randint(0, len(parts)), sample(rng))
    line = "".join(parts).encode("utf-8")
    roll = rng.random()
    if roll < 0.05:
        line += b"\xe2\x82"  # an unfinished UTF-8 sequence
    elif roll < 0.08:
        line = b"\xff" + line.replace("\ufffd".encode(), b"\xff")
    elif roll < 0.1:
        line += b"\r"
    elif roll < 0.12:
        line = line * rng.randint(5, 30)  # long: cut at max_line
    return line


def random_file(rng, sample):
    lines = [random_line(rng, sample) for _ in range(rng.randint(1, 120))]
    ending = b"\r\n" if rng.random() < 0.3 else b"\n"
    data = b"".join(line + ending for line in lines)
    if rng.random() < 0.3:
        data = data[:-len(ending)]  # a last line without newline
    return data


def expected_lines(data, pattern, max_line):
    """Line by line what the engine promises: (line_no, text) of each line the pattern finds."""
    found = []
    raw_lines = data.split(b"\n")
    if raw_lines[-1] == b"":
        raw_lines.pop()
    for number, raw in enumerate(raw_lines, 1):
        if len(raw) > max_line:
            decoder = codecs.getincrementaldecoder("utf-8")("replace")
            text = decoder.decode(raw[:max_line], final=False) + \
                CUT_MARKER.format(limit=max_line)
        else:
            text = (raw[:-1] if raw.endswith(b"\r") else raw).decode("utf-8", "replace")
        if pattern.search(text):
            found.append((number, text))
    return found


@pytest.mark.parametrize("hit_floor", [literal_module.HIT_FLOOR, 2])
def test_random_patterns_find_the_same_lines_with_and_without_the_prefilter(
        tmp_path, monkeypatch, hit_floor):
    monkeypatch.setattr(literal_module, "HIT_FLOOR", hit_floor)  # 2: RE2 takes over mid-search
    rng = random.Random(2028 + hit_floor)
    checked = with_literal = 0
    for case in range(400):
        source, sample = random_pattern(rng)
        try:
            pattern = re2.compile(source)
        except re2.error:
            continue
        data = random_file(rng, sample)
        path = tmp_path / f"case{case}.log"
        path.write_bytes(data)
        literals = required_literals(pattern)
        with_literal += bool(literals)
        max_line = rng.choice([60, 200, 4000])
        block = rng.choice([max_line + 2, 1024, 4096, 1 << 20])
        options = dict(context=rng.randint(0, 3), block=block, max_line=max_line,
                       max_matches=10 ** 6, live=rng.random() < 0.5)
        fast = search_all(path, pattern, True, **options)
        plain = search_all(path, pattern, False, **options)
        assert fast == plain, (source, literals, data)
        found = [(m["line_no"], m["line"]) for e in fast if e[0] == "matches" for m in e[2]]
        if options["live"] and not data.endswith(b"\n"):
            data = data[:data.rfind(b"\n") + 1]  # a follower takes the unfinished line
        assert found == expected_lines(data, pattern, max_line), (source, literals, data)
        for text in (line for _, line in found):
            assert all(piece in text for piece in literals), (source, literals, text)
        checked += 1
    assert checked > 300 and with_literal > 100


def test_sampled_texts_that_match_hold_every_literal():
    rng = random.Random(7)
    matched = 0
    for _ in range(3000):
        source, sample = random_pattern(rng)
        try:
            pattern = re2.compile(source)
        except re2.error:
            continue
        literals = required_literals(pattern)
        for _ in range(5):
            text = sample(rng)
            if pattern.search(text):
                matched += 1
                assert all(piece in text for piece in literals), (source, literals, text)
    assert matched > 5000


def write(tmp_path, data):
    path = tmp_path / "app.log"
    path.write_bytes(data)
    return path


def same_results(path, pattern, **options):
    """Run with and without the prefilter; assert they agree and return the matches."""
    options.setdefault("max_matches", 10 ** 6)
    fast = search_all(path, re2.compile(pattern), True, **options)
    assert fast == search_all(path, re2.compile(pattern), False, **options)
    return [(m["line_no"], m["line"], m["before"], m["after"])
            for event in fast if event[0] == "matches" for m in event[2]]


def test_literals_at_line_start_and_end_and_several_per_line(tmp_path):
    path = write(tmp_path, b"KEYx\nno\nxKEY\nKEY KEY KEY1\nKE\nY\n")
    assert same_results(path, "KEY[0-9x]?") == [
        (1, "KEYx", [], []), (3, "xKEY", [], []), (4, "KEY KEY KEY1", [], [])]
    assert same_results(path, "^KEY") == [(1, "KEYx", [], []), (4, "KEY KEY KEY1", [], [])]
    assert same_results(path, "KEY$") == [(3, "xKEY", [], [])]


def test_literals_next_to_every_block_boundary_keep_numbers_and_context(tmp_path):
    lines = [f"{'.' * (n % 53)}{'NEEDLE' if n % 7 == 0 else 'hay'}{'.' * (n % 11)}"
             for n in range(3000)]
    path = write(tmp_path, "".join(line + "\n" for line in lines).encode())
    for block in (102, 257, 1000, 4096):
        found = same_results(path, "NEEDLE", context=2, block=block, max_line=100)
        assert [number for number, *_ in found] == [n + 1 for n in range(0, 3000, 7)]
        for number, line, before, after in found:
            assert (line, before, after) == (lines[number - 1], lines[max(0, number - 3):
                                             number - 1], lines[number:number + 2])


def test_crlf_lines_are_matched_and_shown_without_their_cr(tmp_path):
    path = write(tmp_path, b"a\r\nTOKEN one\r\nb\r\r\nTOKEN\r\r\nc\rTOKEN\r\n")
    found = same_results(path, "TOKEN", context=1)
    assert found == [(2, "TOKEN one", ["a"], ["b\r"]), (4, "TOKEN\r", ["b\r"], ["c\rTOKEN"]),
                     (5, "c\rTOKEN", ["TOKEN\r"], [])]
    assert same_results(path, "TOKEN$") == [(5, "c\rTOKEN", [], [])]


def test_case_insensitive_patterns_bail_out_and_still_find_every_case(tmp_path):
    path = write(tmp_path, b"fatal x\nFATAL y\nFaTaL z\nfine\n")
    assert required_literals(re2.compile("(?i)fatal")) == []
    assert [line for _, line, *_ in same_results(path, "(?i)fatal")] == \
        ["fatal x", "FATAL y", "FaTaL z"]
    assert [line for _, line, *_ in same_results(path, "F(?i:atal)")] == ["FATAL y", "FaTaL z"]


def test_alternations_and_optional_groups(tmp_path):
    path = write(tmp_path, b"warn: disk\nerror: disk\nerr: net\ninfo\nerror:: x\n")
    assert [n for n, *_ in same_results(path, "(error|warn): disk")] == [1, 2]
    assert [n for n, *_ in same_results(path, "err(or)?: ")] == [2, 3]
    assert [n for n, *_ in same_results(path, "error:+ ")] == [2, 5]


def test_unicode_literals_and_undecodable_bytes(tmp_path):
    path = write(tmp_path, "é日本\nx\n".encode()
                 + b"\xe2\x82\xc3\xa9\xff\xe6\x97\xa5\xe6\x9c\xac\n"  # ? é ? 日本
                 + "😀 é\n".encode() + b"\xe6\x97\n")
    assert [n for n, *_ in same_results(path, "é")] == [1, 3, 4]
    assert [n for n, *_ in same_results(path, "日本")] == [1, 3]
    assert [n for n, *_ in same_results(path, "\ufffdé")] == [3]
    assert [n for n, *_ in same_results(path, "\ufffd$")] == [5]
    assert [n for n, *_ in same_results(path, "😀 ")] == [4]


def test_a_search_with_a_literal_uses_the_finder_and_others_do_not():
    assert Search(["x"], re2.compile("FATAL-[0-9]"), 0, 10, "utf-8", 100, None, False,
                  4096, time.monotonic).literal is not None
    assert Search(["x"], re2.compile("[0-9]+"), 0, 10, "utf-8", 100, None, False,
                  4096, time.monotonic).literal is None
    assert Search(["x"], re2.compile("FATAL"), 0, 10, "latin-1", 100, None, False,
                  4096, time.monotonic).literal is None


def test_sparse_hits_keep_the_finder_and_hits_in_most_lines_give_it_up(tmp_path):
    path = write(tmp_path, b"".join(b"FATAL-%d\n" % n if n % 100 == 0 else b"quiet %d\n" % n
                                    for n in range(50_000)))
    for pattern, dense, count in (("FATAL-[0-9]+", False, 500), ("quiet [0-9]+7$", True, 4999)):
        search = Search([str(path)], re2.compile(pattern), 0, 10 ** 6, "utf-8", 1000,
                        search_module.open_file, False, 4096, time.monotonic)
        assert list(search.events())[-1][3] == count
        assert search.literal.dense is dense, pattern
