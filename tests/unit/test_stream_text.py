"""Stream texts carry a stable code and params (for translation) next to the English text."""

import re
from pathlib import Path

import pytest

from webapp.streams import protocol
from webapp.streams.text import CATALOGUE, Said, fields, from_fields, say

ROOT = Path(__file__).resolve().parents[2]


def test_a_said_text_is_the_english_and_carries_code_and_params():
    text = say("file_truncated", path="/var/log/app.log")
    assert text == "/var/log/app.log was truncated; reading from its new start"
    assert isinstance(text, str) and isinstance(text, Said)
    assert protocol.notice(text) == {
        "type": "notice", "message": str(text), "message_code": "file_truncated",
        "message_params": {"path": "/var/log/app.log"}}


def test_a_plain_text_has_no_code_and_a_status_code_is_not_overwritten():
    assert protocol.notice("just words") == {"type": "notice", "message": "just words"}
    refused = protocol.status("error", say("not_logged_in"), code=4401)
    assert refused["code"] == 4401 and refused["message_code"] == "not_logged_in"


def test_a_text_survives_a_trip_through_an_event():
    event = protocol.stop_event(say("stopped_by_admin"), "admin_stop")
    again = from_fields(event["message"], event)
    assert fields(again) == fields(say("stopped_by_admin"))
    assert from_fields("plain", {"message_code": "no_such_code"}) == "plain"


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_every_code_has_a_chinese_translation_with_the_same_placeholders(code):
    po = (ROOT / "locale/zh_Hans/LC_MESSAGES/django.po").read_text()
    english = CATALOGUE[code]
    quoted = '"' + english.replace('"', '\\"') + '"'
    assert f"msgid {quoted}" in po, code
    chinese = po.split(f"msgid {quoted}\nmsgstr ", 1)[1].split("\n", 1)[0]
    placeholders = set(re.findall(r"\{(\w+)\}", english))
    assert set(re.findall(r"\{(\w+)\}", chinese)) == placeholders, code


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_every_code_is_documented(code):
    assert f"`{code}`" in (ROOT / "docs/protocol.md").read_text()
