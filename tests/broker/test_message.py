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
