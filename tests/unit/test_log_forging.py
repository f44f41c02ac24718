"""User input reaches the server log escaped: a refused option with a newline is one log line,
and RE2's own C++ logger writes nothing (it would write the raw pattern to stderr)."""

import logging
from urllib.parse import quote

import pytest

from tailf.options import compile_grep
from tests.unit.test_stream_consumer import refused_with
from webapp.streams.options import OptionError

pytestmark = pytest.mark.django_db(transaction=True)

FORGED = "2026-01-01 00:00:00 WARNING tailboard.streams admin logged in from 10.0.0.1"


@pytest.fixture
def server_log(caplog):
    """The records of the (non-propagating) tailboard loggers."""
    logger = logging.getLogger("tailboard")
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


async def test_a_refused_pattern_with_a_newline_is_logged_as_one_escaped_line(
        fakes, viewer, log_source, server_log, capfd):
    pattern = "(x\n" + FORGED
    await refused_with(viewer, f"/ws/tailf/{log_source.pk}/?grep={quote(pattern)}", 4400)
    refused = [r.getMessage() for r in server_log.records if "refused" in r.getMessage()]
    assert len(refused) == 1
    assert "\n" not in refused[0] and "\r" not in refused[0]
    assert "\\n" + FORGED in refused[0]
    out, err = capfd.readouterr()
    assert "\n" + FORGED not in out + err
    assert "Error parsing" not in err


async def test_a_source_id_with_a_newline_is_logged_escaped(fakes, viewer, server_log):
    await refused_with(viewer, "/ws/tailf/1%0A" + quote(FORGED[:30]) + "/", 4404)
    refused = [r.getMessage() for r in server_log.records if "refused" in r.getMessage()]
    assert len(refused) == 1 and "\n" not in refused[0] and "\\n" + FORGED[:30] in refused[0]


def test_re2_writes_nothing_to_stderr_for_an_invalid_pattern(capfd):
    with pytest.raises(OptionError):
        compile_grep("(unclosed\r\n" + FORGED, "search")
    assert compile_grep("ok+").search("okk")
    _, err = capfd.readouterr()
    assert FORGED not in err and "re2" not in err
