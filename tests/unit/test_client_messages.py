"""Client frames: parsed when small and shallow, refused unparsed otherwise."""

import json

import pytest

from webapp.streams import protocol


def test_an_ack_and_a_stop_are_understood():
    assert protocol.parse_client('{"action": "ack", "seq": 3}') == ("ack", {"action": "ack",
                                                                          "seq": 3})
    assert protocol.parse_client('{"action": "stop"}')[0] == "stop"
    assert protocol.parse_client("not json") == (None, None)


@pytest.mark.parametrize("frame", ["[" * 5000 + "]" * 5000, "{\"a\":" * 33 + "1" + "}" * 33,
                                   "[" * 100000], ids=["5000", "33", "unclosed"])
def test_a_deeply_nested_frame_is_refused_before_parsing(frame):
    with pytest.raises(protocol.ClientMessageError) as refused:
        protocol.parse_client(frame)
    assert refused.value.args[0].code in ("message_too_deep", "message_too_large")


def test_nesting_up_to_the_limit_and_brackets_inside_strings_are_fine():
    nested = "[" * protocol.CLIENT_MAX_DEPTH + "]" * protocol.CLIENT_MAX_DEPTH
    assert protocol.parse_client(nested) == (None, None)
    text = json.dumps({"action": "ack", "seq": 1, "note": "[{" * 500 + '\\"'})
    assert protocol.parse_client(text)[0] == "ack"


def test_an_oversized_frame_is_refused():
    frame = json.dumps({"action": "ack", "seq": 1, "pad": " " * protocol.CLIENT_MAX_CHARS})
    with pytest.raises(protocol.ClientMessageError) as refused:
        protocol.parse_client(frame)
    assert refused.value.args[0].code == "message_too_large"
