"""Broad guards contain only failures from outside; a bug raises under the test suite."""

import logging

import pytest
import redis

from tailf.roots import OutsideRoots
from tailf.search import Search
from webapp.streams import faults

log = logging.getLogger("tests.contained")  # propagates to caplog


def guarded(error):
    """A last-resort guard as the stream code writes one; returns what the user would see."""
    try:
        raise error
    except Exception as exc:
        if not isinstance(exc, faults.OUTSIDE):
            faults.contained(log, "a round failed")
        return f"notice: {exc}"


def test_the_test_suite_raises_contained_errors():
    from django.conf import settings

    assert settings.RAISE_CONTAINED_ERRORS is True


def test_a_bug_in_a_guarded_loop_fails_under_tests(caplog):
    with pytest.raises(NameError, match="typo"):
        guarded(NameError("typo"))
    assert "a round failed (an unexpected error, contained)" in caplog.text
    assert "NameError: typo" in caplog.text  # with its traceback


def test_a_bug_in_a_guarded_loop_becomes_a_logged_notice_in_production(settings, caplog):
    settings.RAISE_CONTAINED_ERRORS = False
    assert guarded(NameError("typo")) == "notice: typo"
    assert "Traceback" in caplog.text and "NameError: typo" in caplog.text


@pytest.mark.parametrize("error", [OSError(5, "I/O error"), redis.ConnectionError("gone"),
                                   TimeoutError("slow")])
def test_failures_from_outside_are_notices_even_under_tests(error, caplog):
    assert guarded(error).startswith("notice: ")
    assert "contained" not in caplog.text


def open_with_a_bug(path):
    raise AttributeError("'NoneType' object has no attribute 'fileno'")


def test_a_bug_in_the_search_opener_is_not_a_refusal_notice(tmp_path):
    search = Search([str(tmp_path / "x.log")], "x", 0, 10, "utf-8", 1024, open_with_a_bug,
                    False, 4096, lambda: 0.0)
    with pytest.raises(AttributeError):
        search._open(str(tmp_path / "x.log"))


def refuse(path):
    raise OutsideRoots(f"{path} is not under LOG_ROOTS (/var/log)")


def test_the_confined_openers_refusal_is_still_a_notice(tmp_path):
    search = Search([str(tmp_path / "x.log")], "x", 0, 10, "utf-8", 1024, refuse,
                    False, 4096, lambda: 0.0)
    assert "is not under LOG_ROOTS" in search._open(str(tmp_path / "x.log"))
