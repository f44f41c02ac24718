"""Every notice the log engines (follow, multi, search) send carries a catalogue code, so the
dashboard shows it in the page's language; the reasons a code can say are not English params."""

import ast
import os
from pathlib import Path

import pytest

from tailf.search import scan
from webapp.streams.text import CATALOGUE, Said

ROOT = Path(__file__).resolve().parents[2]
ENGINES = ["tailf/follow.py", "tailf/multi.py", "tailf/search.py"]


def notice_payloads(tree):
    """The second element of every ("notice", X) tuple in a module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple) and len(node.elts) == 2 \
                and isinstance(node.elts[0], ast.Constant) and node.elts[0].value == "notice":
            yield node.elts[1]


@pytest.mark.parametrize("module", ENGINES)
def test_no_engine_notice_is_a_literal_english_string(module):
    tree = ast.parse((ROOT / module).read_text())
    literal = [ast.unparse(value) for value in notice_payloads(tree)
               if isinstance(value, (ast.JoinedStr, ast.Constant))]
    assert literal == []
    # The texts built elsewhere in the module and sent as notices: no f-string there either.
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
                isinstance(target, ast.Name) and target.id in ("text", "why")
                for target in node.targets):
            assert not isinstance(node.value, ast.JoinedStr), ast.unparse(node)


def notices(events):
    return [value for kind, value in events if kind == "notice"]


def test_a_missing_then_appearing_file_is_told_by_codes_without_english_params(follower,
                                                                             tmp_path):
    log = tmp_path / "app.log"
    tail = follower(log, backlog=0)
    [waiting] = notices(tail.start(now=0))
    assert isinstance(waiting, Said) and waiting.code == "file_missing"
    assert waiting.params == {"path": str(log)}
    log.write_text("")
    [appeared] = notices(tail.poll(now=1))
    assert appeared.code == "file_appeared" and appeared == f"{log} appeared; following it"


def test_search_notices_of_unreadable_files_are_coded(tmp_path):
    fifo = tmp_path / "fifo.log"
    os.mkfifo(fifo)
    found = [event for event in scan([str(tmp_path / "gone.log"), str(fifo)], "x")
             if event[0] == "notice"]
    codes = [text.code for _, text in found]
    assert codes == ["search_missing", "search_not_regular"]
    assert all(code in CATALOGUE for code in codes)


def test_the_warning_of_a_missing_file_is_coded_and_so_is_a_glob_without_files(follower,
                                                                                 tmp_path):
    from tailf.multi import MultiFollower

    log = tmp_path / "app.log"
    tail = follower(log, backlog=0)
    [warning] = [value for kind, value in tail.start(now=0) if kind == "warning"]
    assert isinstance(warning, Said) and warning.code == "path_missing"
    assert warning == f"{log} does not exist"
    multi = MultiFollower(str(tmp_path / "*.gone"), backlog=0, roots=[str(tmp_path)])
    try:
        [warning] = [value for kind, value in multi.start(now=0) if kind == "warning"]
        assert warning.code == "glob_no_match"
    finally:
        multi.close()
