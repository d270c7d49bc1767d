"""Every packet kind of every version survives encode -> decode, whole or cut anywhere."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from culex.protocol import Decoder, MQTTError, Packet

from strategies import VERSIONS, connects, packets


def _decode_all(data: bytes, version: int) -> list[Packet]:
    decoder = Decoder(version=version)
    decoder.feed(data)
    out = []
    while (packet := decoder.next_packet()) is not None:
        out.append(packet)
    assert decoder.buffered == 0
    return out


@pytest.mark.parametrize("version", VERSIONS)
@given(data=st.data())
def test_round_trip(version: int, data: st.DataObject) -> None:
    packet = data.draw(packets(version))
    assert _decode_all(packet.encode(version), version) == [packet]


@pytest.mark.parametrize("version", VERSIONS)
@given(data=st.data())
def test_cut_at_every_byte_needs_more_data(version: int, data: st.DataObject) -> None:
    packet = data.draw(packets(version))
    wire = packet.encode(version)
    decoder = Decoder(version=version)
    for index in range(len(wire) - 1):
        decoder.feed(wire[index:index + 1])
        assert decoder.next_packet() is None, f"a packet out of {index + 1} of {len(wire)} bytes"
    decoder.feed(wire[-1:])
    assert decoder.next_packet() == packet


@pytest.mark.parametrize("version", VERSIONS)
@given(data=st.data())
def test_stream_of_packets_in_arbitrary_chunks(version: int, data: st.DataObject) -> None:
    sent = data.draw(st.lists(packets(version), min_size=1, max_size=5))
    wire = b"".join(p.encode(version) for p in sent)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=6)))
    decoder = Decoder(version=version)
    got = []
    for start, end in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        decoder.feed(wire[start:end])
        while (packet := decoder.next_packet()) is not None:
            got.append(packet)
    assert got == sent


@given(st.binary(max_size=200), st.sampled_from([0, *VERSIONS]))
def test_random_bytes_give_packets_or_mqtt_errors_only(garbage: bytes, version: int) -> None:
    decoder = Decoder(max_packet_size=1000, version=version)
    decoder.feed(garbage)
    try:
        while decoder.next_packet() is not None:
            pass
    except MQTTError:
        pass


@given(data=st.data())
def test_connect_sets_the_decoder_version(data: st.DataObject) -> None:
    version = data.draw(st.sampled_from(VERSIONS))
    connect = data.draw(connects(version))
    decoder = Decoder()
    decoder.feed(connect.encode(version))
    assert decoder.next_packet() == connect
    assert decoder.version == version
