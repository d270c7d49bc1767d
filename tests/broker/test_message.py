"""A message's shared encodings: the same bytes as encoding the packet for each delivery."""

from __future__ import annotations

import pytest

from culex.broker import Message
from culex.protocol import Properties, Publish


@pytest.mark.parametrize("version", [3, 4, 5])
@pytest.mark.parametrize("retain", [False, True])
def test_the_shared_qos0_packet_is_the_packet(version: int, retain: bool) -> None:
    props = Properties(content_type="text/plain", user_properties=[("k", "v")])
    message = Message("maison/salon/temperature", b"28", 1, retain, props)
    expected = Publish("maison/salon/temperature", b"28", 0, retain,
                       properties=props if version == 5 else Properties()).encode(version)
    first = message.qos0_packet(version == 5, retain)
    assert first == expected
    assert message.qos0_packet(version == 5, retain) is first  # encoded once
    # The header alone, as written before a large payload, agrees with it.
    header = message.publish_header(version == 5, 0, retain, False, 0, (), 0.0)
    assert header + b"28" == expected


@pytest.mark.parametrize("version", [4, 5])
def test_a_kept_message_encodes_the_same_and_keeps_no_encoding(version: int) -> None:
    """The retained message of a topic is a copy that caches nothing: sent once to each new
    subscriber, its encodings would otherwise stay as long as it does."""
    props = Properties(content_type="text/plain")
    message = Message("maison/salon/temperature", b"28", 1, True, props)
    kept = message.kept()
    assert kept.payload is message.payload
    for retain in (False, True):
        packet = kept.qos0_packet(version == 5, retain)
        assert packet == message.qos0_packet(version == 5, retain)
        assert kept.qos0_packet(version == 5, retain) is not packet  # encoded anew
        header = kept.publish_header(version == 5, 0, retain, False, 0, (), 0.0)
        assert header == message.publish_header(version == 5, 0, retain, False, 0, (), 0.0)
        assert kept.publish_header(version == 5, 0, retain, False, 0, (), 0.0) is not header


def test_the_retained_store_keeps_a_copy() -> None:
    from culex.broker import RetainedStore

    store = RetainedStore()
    message = Message("a/b", b"x", 0, True)
    message.qos0_packet(False, True)  # delivered live first: its own encodings
    store.set(message)
    kept = store.get("a/b")
    assert kept is not None and kept is not message and kept.payload is message.payload
    assert kept.qos0_packet(False, True) is not kept.qos0_packet(False, True)
