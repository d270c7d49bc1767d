"""Exact bytes, limits at their boundary, and the malformed inputs the spec names."""

from __future__ import annotations

import pytest

from culex.protocol import (
    MQTT_5,
    ConnAck,
    Connect,
    Decoder,
    Disconnect,
    MQTTError,
    Packet,
    PingReq,
    Properties,
    PubAck,
    Publish,
    PubRel,
    ReasonCode,
    SubAck,
    Subscribe,
    SubscriptionRequest,
    Unsubscribe,
    UnsupportedProtocolVersion,
    Will,
    decode_varint,
    encode_varint,
)


def decode(data: bytes, version: int = 4, max_packet_size: int | None = None) -> Packet | None:
    decoder = Decoder(version=version) if max_packet_size is None else Decoder(
        max_packet_size, version)
    decoder.feed(data)
    return decoder.next_packet()


def reason_of(data: bytes, version: int = 4, **kw: int) -> ReasonCode:
    with pytest.raises(MQTTError) as info:
        decode(data, version, **kw)
    return info.value.reason_code


# -- variable byte integers (MQTT 1.5.5) -----------------------------------------------------

@pytest.mark.parametrize(("value", "wire"), [
    (0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (16_383, b"\xff\x7f"),
    (16_384, b"\x80\x80\x01"), (2_097_151, b"\xff\xff\x7f"), (2_097_152, b"\x80\x80\x80\x01"),
    (268_435_455, b"\xff\xff\xff\x7f"),
])
def test_varint_boundaries(value: int, wire: bytes) -> None:
    buf = bytearray()
    encode_varint(value, buf)
    assert bytes(buf) == wire  # MQTT-1.5.5-1: the fewest bytes
    assert decode_varint(wire, 0, len(wire)) == (value, len(wire))


def test_varint_above_maximum_is_refused_by_encoder() -> None:
    with pytest.raises(ValueError):
        encode_varint(268_435_456, bytearray())


def test_remaining_length_of_five_bytes_is_malformed() -> None:
    assert reason_of(b"\x30\xff\xff\xff\xff\x01") == ReasonCode.MALFORMED_PACKET


# -- exact bytes ----------------------------------------------------------------------------

def test_exact_bytes_of_small_packets() -> None:
    """No packet identifier at QoS 0: MQTT-2.2.1-2; 3.1.1: MQTT-2.3.1-5. No properties is a
    zero Property Length: MQTT-2.2.2-1."""
    assert Publish("a", b"x", 0).encode(4) == b"\x30\x04\x00\x01ax"
    assert ConnAck(False, 0).encode(4) == b"\x20\x02\x00\x00"
    assert ConnAck(True, 0).encode(5) == b"\x20\x03\x01\x00\x00"
    assert PubAck(7).encode(4) == b"\x40\x02\x00\x07"
    assert PubAck(7).encode(5) == b"\x40\x02\x00\x07"
    assert PubAck(7, 0x10).encode(5) == b"\x40\x03\x00\x07\x10"
    assert PubRel(1).encode(4) == b"\x62\x02\x00\x01"
    assert SubAck(1, [0, 1, 0x80]).encode(4) == b"\x90\x05\x00\x01\x00\x01\x80"
    assert PingReq().encode(4) == b"\xc0\x00"
    assert Disconnect(0x8E).encode(5) == b"\xe0\x02\x8e\x00"
    assert Disconnect(0x8E).encode(4) == b"\xe0\x00"
    assert Publish("a/b", b"hi", 1, packet_id=10).encode(4) == b"\x32\x09\x00\x03a/b\x00\x0ahi"
    assert Publish("a", b"", 0).encode(5) == b"\x30\x04\x00\x01a\x00"


# -- maximum packet size: refused from the fixed header ---------------------------------------

def test_oversized_packet_refused_before_its_body_arrives() -> None:
    decoder = Decoder(max_packet_size=100, version=4)
    decoder.feed(b"\x30\xe8\x07")  # announces a 1000-byte body, sends none of it
    with pytest.raises(MQTTError) as info:
        decoder.next_packet()
    assert info.value.reason_code == ReasonCode.PACKET_TOO_LARGE


def test_maximum_packet_size_boundary() -> None:
    exact = Publish("t", b"x" * 95).encode(4)
    assert len(exact) == 100
    assert decode(exact, max_packet_size=100) == Publish("t", b"x" * 95)
    too_big = Publish("t", b"x" * 96).encode(4)
    assert reason_of(too_big, max_packet_size=100) == ReasonCode.PACKET_TOO_LARGE


# -- UTF-8 (MQTT 1.5.4) ---------------------------------------------------------------------

def _publish_with_raw_topic(raw: bytes, version: int = 4) -> bytes:
    body = len(raw).to_bytes(2, "big") + raw + (b"\x00" if version == MQTT_5 else b"")
    return bytes((0x30, len(body))) + body


@pytest.mark.parametrize("raw", [
    b"\xff",                    # never valid in UTF-8
    b"a\xc3",                   # truncated sequence
    b"\xc0\xaf",                # overlong "/"
    b"\xed\xa0\x80",            # U+D800, a surrogate (MQTT-1.5.4-1)
    b"\xf4\x90\x80\x80",        # above U+10FFFF
    b"a\x00b",                  # U+0000 (MQTT-1.5.4-2)
])
@pytest.mark.parametrize("version", [4, MQTT_5])
def test_invalid_utf8_is_malformed(raw: bytes, version: int) -> None:
    """MQTT-1.5.4-1, -2; 3.1.1: MQTT-1.5.3-1, -2; a topic name is a UTF-8 string:
    3.1.1: MQTT-3.3.2-1."""
    assert reason_of(_publish_with_raw_topic(raw, version), version) == \
        ReasonCode.MALFORMED_PACKET


@pytest.mark.parametrize("version", [4, MQTT_5])
def test_bom_is_kept(version: int) -> None:
    """MQTT-1.5.4-3; 3.1.1: MQTT-1.5.3-3."""
    packet = decode(_publish_with_raw_topic(b"\xef\xbb\xbfa", version), version)
    assert isinstance(packet, Publish) and packet.topic == "\ufeffa"


# -- fixed header ---------------------------------------------------------------------------

@pytest.mark.parametrize("wire", [
    b"\x60\x02\x00\x01",        # PUBREL without its 0010 flags (MQTT-3.6.1-1)
    b"\x80\x06\x00\x01\x00\x01a\x00",  # SUBSCRIBE without 0010
    b"\xc1\x00",                # PINGREQ with a flag
    b"\x00\x00",                # reserved type 0
    b"\x36\x05\x00\x01a\x00\x01",  # PUBLISH QoS 3 (MQTT-3.3.1-4)
    b"\x38\x03\x00\x01a",       # DUP on QoS 0
    b"\xc0\x01\x00",            # PINGREQ with a body
    b"\x40\x03\x00\x01\x00",    # v3 PUBACK with an extra byte
    b"\xa0\x05\x00\x01\x00\x01a",  # UNSUBSCRIBE without 0010
    b"\xe1\x00",                # DISCONNECT with a flag
])
def test_malformed_fixed_headers_and_bodies(wire: bytes) -> None:
    """Reserved flags: 3.1.1: MQTT-2.2.2-1, -2; PUBREL, SUBSCRIBE, UNSUBSCRIBE, DISCONNECT:
    3.1.1: MQTT-3.6.1-1, 3.1.1: MQTT-3.8.1-1, 3.1.1: MQTT-3.10.1-1, 3.1.1: MQTT-3.14.1-1;
    QoS 3: 3.1.1: MQTT-3.3.1-4; DUP on QoS 0: 3.1.1: MQTT-3.3.1-2."""
    assert reason_of(wire) == ReasonCode.MALFORMED_PACKET


@pytest.mark.parametrize("wire", [
    b"\x60\x02\x00\x01",        # PUBREL without its 0010 flags
    b"\x80\x07\x00\x01\x00\x00\x01a\x00",  # SUBSCRIBE without 0010
    b"\xa0\x06\x00\x01\x00\x00\x01a",  # UNSUBSCRIBE without 0010
    b"\xc1\x00",                # PINGREQ with a flag
    b"\x36\x06\x00\x01a\x00\x01\x00",  # PUBLISH QoS 3
    b"\xe1\x00",                # DISCONNECT with a flag
    b"\xf1\x00",                # AUTH with a flag
])
def test_malformed_fixed_headers_v5(wire: bytes) -> None:
    """MQTT-2.1.3-1 (reserved flags); PUBREL, SUBSCRIBE, UNSUBSCRIBE, DISCONNECT, AUTH:
    MQTT-3.6.1-1, MQTT-3.8.1-1, MQTT-3.10.1-1, MQTT-3.14.1-1, MQTT-3.15.1-1; QoS 3:
    MQTT-3.3.1-4."""
    assert reason_of(wire, MQTT_5) == ReasonCode.MALFORMED_PACKET


def test_auth_is_reserved_before_mqtt5() -> None:
    assert reason_of(b"\xf0\x00", version=4) == ReasonCode.MALFORMED_PACKET
    assert decode(b"\xf0\x00", version=5) is not None


def test_wildcard_in_topic_name() -> None:
    """3.1.1: MQTT-3.3.2-2, 3.1.1: MQTT-4.7.1-1; MQTT-3.3.2-2, MQTT-4.7.0-1."""
    assert reason_of(Publish("a/+", b"").encode(5), MQTT_5) == ReasonCode.TOPIC_NAME_INVALID
    assert reason_of(Publish("a/+", b"").encode(4)) == ReasonCode.TOPIC_NAME_INVALID
    assert reason_of(Publish("a/#", b"").encode(4)) == ReasonCode.TOPIC_NAME_INVALID


def test_packet_identifier_zero_is_a_protocol_error() -> None:
    """3.1.1: MQTT-2.3.1-1 (a non-zero packet identifier)."""
    assert reason_of(b"\x32\x05\x00\x01a\x00\x00") == ReasonCode.PROTOCOL_ERROR
    assert reason_of(b"\x40\x02\x00\x00") == ReasonCode.PROTOCOL_ERROR


# -- CONNECT --------------------------------------------------------------------------------

def _connect(name: bytes, level: int, flags: int, payload: bytes) -> bytes:
    body = len(name).to_bytes(2, "big") + name + bytes((level, flags)) + b"\x00\x3c" + payload
    return bytes((0x10, len(body))) + body


CLIENT = b"\x00\x01c"


def test_connect_reserved_flag_is_malformed() -> None:
    """MQTT-3.1.2-3 (3.1.1 and 5.0)."""
    assert reason_of(_connect(b"MQTT", 5, 0x03, b"\x00" + CLIENT), 0) == \
        ReasonCode.MALFORMED_PACKET
    assert reason_of(_connect(b"MQTT", 4, 0x03, CLIENT), 0) == ReasonCode.MALFORMED_PACKET


def test_connect_will_qos_without_will_is_malformed() -> None:
    """3.1.1: MQTT-3.1.2-11, -13, -15."""
    assert reason_of(_connect(b"MQTT", 4, 0x0A, CLIENT), 0) == ReasonCode.MALFORMED_PACKET
    assert reason_of(_connect(b"MQTT", 4, 0x22, CLIENT), 0) == ReasonCode.MALFORMED_PACKET


def test_connect_will_qos_3_is_malformed() -> None:
    """3.1.1: MQTT-3.1.2-14."""
    payload = CLIENT + b"\x00\x01t\x00\x00"
    assert reason_of(_connect(b"MQTT", 4, 0x1E, payload), 0) == ReasonCode.MALFORMED_PACKET


def test_connect_password_without_username() -> None:
    """3.1.1: MQTT-3.1.2-22."""
    payload = CLIENT + b"\x00\x01p"
    assert reason_of(_connect(b"MQTT", 4, 0x42, payload), 0) == ReasonCode.MALFORMED_PACKET
    # MQTT 5 allows it (3.1.2.9).
    packet = decode(_connect(b"MQTT", 5, 0x42, b"\x00" + payload), 0)
    assert packet is not None


def test_connect_unknown_level_and_name() -> None:
    with pytest.raises(UnsupportedProtocolVersion):
        decode(_connect(b"MQTT", 6, 0x02, CLIENT), 0)
    with pytest.raises(UnsupportedProtocolVersion):
        decode(_connect(b"MQIsdp", 4, 0x02, CLIENT), 0)
    with pytest.raises(UnsupportedProtocolVersion):  # 3.1 is MQIsdp; Mosquitto agrees
        decode(_connect(b"MQTT", 3, 0x02, CLIENT), 0)
    assert reason_of(_connect(b"HTTP", 4, 0x02, CLIENT), 0) == ReasonCode.PROTOCOL_ERROR


def test_connect_trailing_bytes_are_malformed() -> None:
    """A payload field whose flag is 0 may not be there: 3.1.1: MQTT-3.1.2-18, -20;
    the CONNECT must match its format: 3.1.1: MQTT-3.1.4-1."""
    assert reason_of(_connect(b"MQTT", 4, 0x02, CLIENT + b"x"), 0) == ReasonCode.MALFORMED_PACKET


# -- MQTT 5 properties ----------------------------------------------------------------------

def _v5_publish_with_props(props: bytes) -> bytes:
    body = b"\x00\x01t" + bytes((len(props),)) + props
    return bytes((0x30, len(body))) + body


def test_duplicate_property_is_a_protocol_error() -> None:
    wire = _v5_publish_with_props(b"\x01\x01\x01\x01")
    assert reason_of(wire, MQTT_5) == ReasonCode.PROTOCOL_ERROR


def test_property_not_allowed_in_packet_is_malformed() -> None:
    wire = _v5_publish_with_props(b"\x11\x00\x00\x00\x01")  # session expiry on PUBLISH
    assert reason_of(wire, MQTT_5) == ReasonCode.MALFORMED_PACKET


def test_unknown_property_is_malformed() -> None:
    assert reason_of(_v5_publish_with_props(b"\x7f\x00"), MQTT_5) == ReasonCode.MALFORMED_PACKET


def test_property_value_rules() -> None:
    assert reason_of(_v5_publish_with_props(b"\x01\x02"), MQTT_5) == ReasonCode.PROTOCOL_ERROR
    assert reason_of(_v5_publish_with_props(b"\x0b\x00"), MQTT_5) == ReasonCode.PROTOCOL_ERROR


def test_property_length_past_the_end_is_malformed() -> None:
    body = b"\x00\x01t\x09\x01"
    assert reason_of(bytes((0x30, len(body))) + body, MQTT_5) == ReasonCode.MALFORMED_PACKET


def test_user_properties_keep_their_order_and_repeats() -> None:
    props = Properties(user_properties=[("b", "1"), ("a", "2"), ("b", "3")])
    packet = Publish("t", b"x", properties=props)
    decoded = decode(packet.encode(MQTT_5), MQTT_5)
    assert isinstance(decoded, Publish)
    assert decoded.properties.user_properties == [("b", "1"), ("a", "2"), ("b", "3")]


# -- SUBSCRIBE / UNSUBSCRIBE ----------------------------------------------------------------

def test_subscribe_without_filters_is_a_protocol_error() -> None:
    """3.1.1: MQTT-3.8.3-3, 3.1.1: MQTT-3.10.3-2; MQTT-3.8.3-2, MQTT-3.10.3-2."""
    assert reason_of(b"\x82\x02\x00\x01") == ReasonCode.PROTOCOL_ERROR
    assert reason_of(b"\xa2\x02\x00\x01") == ReasonCode.PROTOCOL_ERROR
    assert reason_of(b"\x82\x03\x00\x01\x00", MQTT_5) == ReasonCode.PROTOCOL_ERROR
    assert reason_of(b"\xa2\x03\x00\x01\x00", MQTT_5) == ReasonCode.PROTOCOL_ERROR


def test_subscribe_reserved_option_bits() -> None:
    """MQTT-3.8.3-5."""
    assert reason_of(b"\x82\x06\x00\x01\x00\x01a\x04") == ReasonCode.MALFORMED_PACKET  # v3
    wire = b"\x82\x07\x00\x01\x00\x00\x01a\x40"
    assert reason_of(wire, MQTT_5) == ReasonCode.MALFORMED_PACKET
    wire = b"\x82\x07\x00\x01\x00\x00\x01a\x30"  # retain handling 3
    assert reason_of(wire, MQTT_5) == ReasonCode.PROTOCOL_ERROR
    assert reason_of(b"\x82\x06\x00\x01\x00\x01a\x03") == ReasonCode.MALFORMED_PACKET  # QoS 3


# -- large packets: assembled in their own buffer, payload never copied ---------------------

@pytest.mark.parametrize("chunk", [1000, 65536, 300_000])
def test_large_packet_in_chunks_followed_by_small_ones(chunk: int) -> None:
    payload = bytes(range(256)) * 1000  # 256 kB
    wire = (PingReq().encode(4) + Publish("big", payload, 1, packet_id=3).encode(4)
            + Publish("after", b"x").encode(4) + PingReq().encode(4))
    decoder = Decoder(version=4)
    got: list[Packet] = []
    for start in range(0, len(wire), chunk):
        decoder.feed(wire[start:start + chunk])
        while (packet := decoder.next_packet()) is not None:
            got.append(packet)
    assert got == [PingReq(), Publish("big", payload, 1, packet_id=3), Publish("after", b"x"),
                   PingReq()]
    big = got[1]
    assert isinstance(big, Publish)
    if chunk < len(wire):
        assert isinstance(big.payload, memoryview)  # a view of its own buffer, not a copy
    assert decoder.buffered == 0


def test_large_packet_limit_still_applies() -> None:
    decoder = Decoder(max_packet_size=100_000, version=4)
    decoder.feed(Publish("t", b"x" * 100_001).encode(4)[:10])
    with pytest.raises(MQTTError):
        decoder.next_packet()


def test_announced_size_is_not_allocated_ahead_of_the_bytes() -> None:
    decoder = Decoder(version=4)
    decoder.feed(b"\x30\xff\xff\xff\x7f\x00\x01t")  # announces the protocol maximum
    assert decoder.next_packet() is None
    assert decoder.buffered == 8  # what arrived, not 256 MB


# -- every string is UTF-8, without U+0000 ---------------------------------------------------

MARK = "\u20ac"  # three bytes of UTF-8 (E2 82 AC), swapped for three bad ones when encoded


def _with_bad_byte(packet: Packet, version: int, bad: bytes) -> bytes:
    wire = packet.encode(version)
    assert wire.count(MARK.encode()) == 1
    return wire.replace(MARK.encode(), bad)


_STRING_FIELDS: list[tuple[int, Packet]] = [
    (4, Connect(MARK)), (5, Connect(MARK, 5)),
    (4, Connect("c", will=Will(MARK, b"x"))), (5, Connect("c", 5, will=Will(MARK, b"x"))),
    (4, Connect("c", username=MARK)), (5, Connect("c", 5, username=MARK)),
    (4, Subscribe(1, [SubscriptionRequest(MARK)])),
    (5, Subscribe(1, [SubscriptionRequest(MARK)])),
    (4, Unsubscribe(1, [MARK])), (5, Unsubscribe(1, [MARK])),
    (5, Publish("t", properties=Properties(response_topic=MARK))),
    (5, Publish("t", properties=Properties(content_type=MARK))),
    (5, Publish("t", properties=Properties(user_properties=[(MARK, "v")]))),
    (5, Publish("t", properties=Properties(user_properties=[("k", MARK)]))),
]


@pytest.mark.parametrize(("version", "packet"), _STRING_FIELDS)
@pytest.mark.parametrize("bad", [b"\xe2\x82\xff", b"a\x00b"])
def test_every_string_field_must_be_utf8(version: int, packet: Packet, bad: bytes) -> None:
    """Client id, will topic, user name: MQTT-3.1.3-4, -11, -12; 3.1.1: MQTT-3.1.3-4, -10,
    -11. Topic filters: MQTT-3.8.3-1, MQTT-3.10.3-1; 3.1.1: MQTT-3.8.3-1, 3.1.1: MQTT-3.10.3-1.
    Response topic, content type, user properties: MQTT-3.3.2-13, MQTT-3.3.2-19,
    MQTT-1.5.7-1. No U+0000 in names and filters: MQTT-4.7.3-2; 3.1.1: MQTT-4.7.3-2."""
    wire = _with_bad_byte(packet, version, bad)
    # A CONNECT tells the decoder its version; other packets are read at the given one.
    assert reason_of(wire, 0 if isinstance(packet, Connect) else version) == \
        ReasonCode.MALFORMED_PACKET


def test_topic_name_with_u0000_is_malformed() -> None:
    """MQTT-4.7.3-2, MQTT-3.3.2-1; 3.1.1: MQTT-4.7.3-2."""
    for version in (4, MQTT_5):
        assert reason_of(_publish_with_raw_topic(b"a\x00", version), version) == \
            ReasonCode.MALFORMED_PACKET


def _v5_connect(flags: int, payload: bytes) -> bytes:
    """A CONNECT at level 5, no properties, payload as given (client id "c" first)."""
    return _connect(b"MQTT", 5, flags, b"\x00" + CLIENT + payload)


@pytest.mark.parametrize(("flags", "payload"), [
    (0x0A, b""),  # Will QoS 1 without the Will Flag (MQTT-3.1.2-11)
    (0x22, b""),  # Will Retain without the Will Flag (MQTT-3.1.2-13)
    (0x1E, b"\x00\x00\x01t\x00\x00"),  # Will QoS 3 (MQTT-3.1.2-12)
    (0x06, b""),  # Will Flag, but no will properties, topic or payload (MQTT-3.1.2-9)
    (0x02, b"\x00\x01u"),  # a user name without its flag (MQTT-3.1.2-16)
    (0x82, b""),  # the flag without a user name (MQTT-3.1.2-17)
    (0x82, b"\x00\x01u\x00\x01p"),  # a password without its flag (MQTT-3.1.2-18)
    (0xC2, b"\x00\x01u"),  # the flag without a password (MQTT-3.1.2-19)
])
def test_connect_flags_and_fields_must_agree_v5(flags: int, payload: bytes) -> None:
    """MQTT-3.1.2-9, -11, -12, -13, -16, -17, -18, -19; the format is checked before anything
    else (MQTT-3.1.4-1)."""
    assert reason_of(_v5_connect(flags, payload), 0) == ReasonCode.MALFORMED_PACKET


@pytest.mark.parametrize(("flags", "payload"), [
    (0x06, b""),  # Will Flag without will topic and payload
    (0x82, b""),  # User Name Flag without a user name
    (0xC2, b"\x00\x01u"),  # Password Flag without a password
])
def test_connect_flags_and_fields_must_agree(flags: int, payload: bytes) -> None:
    """3.1.1: MQTT-3.1.2-9, -19, -21."""
    assert reason_of(_connect(b"MQTT", 4, flags, CLIENT + payload), 0) == \
        ReasonCode.MALFORMED_PACKET


@pytest.mark.parametrize("version", [4, MQTT_5])
def test_connect_fields_are_read_in_their_order(version: int) -> None:
    """MQTT-3.1.3-1, MQTT-3.1.3-3; 3.1.1: MQTT-3.1.3-1, -3."""
    props = b"\x00" if version == MQTT_5 else b""
    payload = (b"\x00\x02id" + props + b"\x00\x02wt\x00\x02wm\x00\x02un\x00\x02pw")
    packet = decode(_connect(b"MQTT", version, 0xC6, props + payload), 0)
    assert isinstance(packet, Connect) and packet.will is not None
    assert (packet.client_id, packet.will.topic, packet.will.payload, packet.username,
            packet.password) == ("id", "wt", b"wm", "un", b"pw")
