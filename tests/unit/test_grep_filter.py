"""The `grep` filter of streams that tail lines: one RE2 call per line, the same answers as
RE2's `search`."""

import pytest

from tailf.options import compile_grep
from tailf.stream import compile_filter

LINES = ["", "ERROR disk full", "error disk full", "héllo wörld ERROR", "a\x00b ERROR",
         "x" * 70_000 + "ERROR", "WARN only", "ERRORERROR", "prefix-ERROR-suffix"]


@pytest.mark.parametrize("pattern", ["ERROR", "^ERROR", "ERROR$", "(?i)error", "wörld",
                                     r"\bERROR\b", "a\x00b", "x{3}E", "ERR(OR|XX)"])
def test_the_grep_filter_answers_as_re2_search(pattern):
    matcher, regexp = compile_filter(pattern), compile_grep(pattern)
    assert matcher != regexp.search, "the filter fell back to re2's search"
    assert [bool(matcher(line)) for line in LINES] == [bool(regexp.search(line))
                                                         for line in LINES]


def test_no_pattern_means_no_filter():
    assert compile_filter("") is None
