"""The envelope of a message between nodes: every field round-trips; garbage is refused with
EnvelopeError, never another exception."""

from __future__ import annotations

import contextlib

from hypothesis import given
from hypothesis import strategies as st

from culex.cluster._envelope import Envelope, EnvelopeError, decode, encode
from culex.protocol import PacketType

from strategies import properties, text

envelopes = st.builds(
    Envelope,
    node=st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=20),
    epoch=st.integers(0, 2**32 - 1), seq=st.integers(0, 2**64 - 1), qos=st.integers(0, 2),
    retain=st.booleans(), sender=st.one_of(st.none(), text),
    expiry=st.one_of(st.none(), st.floats(0, 2**32, allow_nan=False)),
    properties=properties(PacketType.PUBLISH), payload=st.binary(max_size=64))


@given(envelopes)
def test_round_trip(envelope: Envelope) -> None:
    back = decode(encode(envelope))
    assert back == Envelope(envelope.node, envelope.epoch, envelope.seq, envelope.qos,
                            envelope.retain, envelope.sender, envelope.expiry,
                            envelope.properties, back.payload)
    assert bytes(back.payload) == envelope.payload


@given(st.binary(max_size=80))
def test_garbage_is_refused_cleanly(data: bytes) -> None:
    with contextlib.suppress(EnvelopeError):
        decode(data)


@given(envelopes, st.data())
def test_truncated_envelopes_are_refused_or_shorter(envelope: Envelope, data: st.DataObject
                                                    ) -> None:
    encoded = encode(envelope)
    cut = data.draw(st.integers(0, len(encoded) - len(envelope.payload) - 1))
    try:
        decode(encoded[:cut])
    except EnvelopeError:
        return
    raise AssertionError("a cut header decoded")
