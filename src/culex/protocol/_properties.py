"""MQTT 5 properties (MQTT 5.0 section 2.2.2): one typed record, and the table of which packet
may carry which property."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import IntEnum

from ._codec import (
    Buffer,
    decode_binary,
    decode_byte,
    decode_uint16,
    decode_uint32,
    decode_utf8,
    decode_varint,
    encode_binary,
    encode_utf8,
    encode_varint,
)
from ._errors import malformed, protocol_error


class PacketType(IntEnum):
    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14
    AUTH = 15


WILL = 0  # pseudo packet type for the Will Properties of CONNECT (MQTT 5.0 3.1.3.2)

_BYTE, _U16, _U32, _VARINT, _UTF8, _BINARY, _PAIR = range(7)

_P = PacketType
_ACKS = frozenset({_P.PUBACK, _P.PUBREC, _P.PUBREL, _P.PUBCOMP})
_EVERY = frozenset({*_P, WILL}) - {_P.PINGREQ, _P.PINGRESP}

# identifier -> (attribute, data type, packets that may carry it); MQTT 5.0 table 2-4.
PROPERTY_TABLE: dict[int, tuple[str, int, frozenset[int]]] = {
    0x01: ("payload_format_indicator", _BYTE, frozenset({_P.PUBLISH, WILL})),
    0x02: ("message_expiry_interval", _U32, frozenset({_P.PUBLISH, WILL})),
    0x03: ("content_type", _UTF8, frozenset({_P.PUBLISH, WILL})),
    0x08: ("response_topic", _UTF8, frozenset({_P.PUBLISH, WILL})),
    0x09: ("correlation_data", _BINARY, frozenset({_P.PUBLISH, WILL})),
    0x0B: ("subscription_identifiers", _VARINT, frozenset({_P.PUBLISH, _P.SUBSCRIBE})),
    0x11: ("session_expiry_interval", _U32, frozenset({_P.CONNECT, _P.CONNACK, _P.DISCONNECT})),
    0x12: ("assigned_client_identifier", _UTF8, frozenset({_P.CONNACK})),
    0x13: ("server_keep_alive", _U16, frozenset({_P.CONNACK})),
    0x15: ("authentication_method", _UTF8, frozenset({_P.CONNECT, _P.CONNACK, _P.AUTH})),
    0x16: ("authentication_data", _BINARY, frozenset({_P.CONNECT, _P.CONNACK, _P.AUTH})),
    0x17: ("request_problem_information", _BYTE, frozenset({_P.CONNECT})),
    0x18: ("will_delay_interval", _U32, frozenset({WILL})),
    0x19: ("request_response_information", _BYTE, frozenset({_P.CONNECT})),
    0x1A: ("response_information", _UTF8, frozenset({_P.CONNACK})),
    0x1C: ("server_reference", _UTF8, frozenset({_P.CONNACK, _P.DISCONNECT})),
    0x1F: ("reason_string", _UTF8, _EVERY - {_P.CONNECT, _P.PUBLISH, WILL, _P.SUBSCRIBE,
                                            _P.UNSUBSCRIBE}),
    0x21: ("receive_maximum", _U16, frozenset({_P.CONNECT, _P.CONNACK})),
    0x22: ("topic_alias_maximum", _U16, frozenset({_P.CONNECT, _P.CONNACK})),
    0x23: ("topic_alias", _U16, frozenset({_P.PUBLISH})),
    0x24: ("maximum_qos", _BYTE, frozenset({_P.CONNACK})),
    0x25: ("retain_available", _BYTE, frozenset({_P.CONNACK})),
    0x26: ("user_properties", _PAIR, _EVERY),
    0x27: ("maximum_packet_size", _U32, frozenset({_P.CONNECT, _P.CONNACK})),
    0x28: ("wildcard_subscription_available", _BYTE, frozenset({_P.CONNACK})),
    0x29: ("subscription_identifier_available", _BYTE, frozenset({_P.CONNACK})),
    0x2A: ("shared_subscription_available", _BYTE, frozenset({_P.CONNACK})),
}
assert PROPERTY_TABLE[0x1F][2] >= _ACKS

# Byte properties whose only legal values are 0 and 1: anything else is a Protocol Error.
_BOOLEAN_PROPERTIES = frozenset({0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A})
# Properties for which 0 is a Protocol Error (3.1.2.11.3, 3.1.2.11.4, 3.2.2.3.3, 3.8.2.1.2).
_NONZERO_PROPERTIES = frozenset({0x0B, 0x21, 0x27})
_REPEATABLE = frozenset({0x0B, 0x26})  # Subscription Identifier (PUBLISH), User Property


@dataclass(slots=True, frozen=True)
class Properties:
    """The properties of one packet; an absent property is ``None`` (or an empty list).

    Frozen, because instances are shared: the decoder hands out ``NO_PROPERTIES`` for every
    empty block, and one PUBLISH's properties go to every subscriber.
    """

    payload_format_indicator: int | None = None
    message_expiry_interval: int | None = None
    content_type: str | None = None
    response_topic: str | None = None
    correlation_data: bytes | None = None
    subscription_identifiers: list[int] = field(default_factory=list)
    session_expiry_interval: int | None = None
    assigned_client_identifier: str | None = None
    server_keep_alive: int | None = None
    authentication_method: str | None = None
    authentication_data: bytes | None = None
    request_problem_information: int | None = None
    will_delay_interval: int | None = None
    request_response_information: int | None = None
    response_information: str | None = None
    server_reference: str | None = None
    reason_string: str | None = None
    receive_maximum: int | None = None
    topic_alias_maximum: int | None = None
    topic_alias: int | None = None
    maximum_qos: int | None = None
    retain_available: int | None = None
    user_properties: list[tuple[str, str]] = field(default_factory=list)
    maximum_packet_size: int | None = None
    wildcard_subscription_available: int | None = None
    subscription_identifier_available: int | None = None
    shared_subscription_available: int | None = None

    def __reduce__(self) -> tuple[type[Properties], tuple[object, ...]]:
        # Pickled by its constructor (culex bench sends properties to its worker processes):
        # compiled by mypyc, a frozen dataclass refuses pickle's field by field restore.
        return Properties, tuple(getattr(self, item.name) for item in fields(self))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name, _, _ in
                          PROPERTY_TABLE.values() if getattr(self, name) not in (None, []))
        return f"Properties({shown})"

    def encode(self) -> bytes:
        """The property length followed by the properties, in identifier order."""
        if self is NO_PROPERTIES:
            return b"\x00"
        body = bytearray()
        for ident, (name, kind, _) in PROPERTY_TABLE.items():
            value = getattr(self, name)
            if value is None:
                continue
            if ident in _REPEATABLE:
                for item in value:
                    body.append(ident)
                    _encode_value(kind, item, body)
            else:
                body.append(ident)
                _encode_value(kind, value, body)
        out = bytearray()
        encode_varint(len(body), out)
        out += body
        return bytes(out)


NO_PROPERTIES = Properties()
_NAMES = frozenset(f.name for f in fields(Properties))
assert {name for name, _, _ in PROPERTY_TABLE.values()} == _NAMES


def _encode_value(kind: int, value: object, buf: bytearray) -> None:
    if kind == _BYTE:
        assert isinstance(value, int)
        buf.append(value)
    elif kind == _U16:
        assert isinstance(value, int)
        buf += value.to_bytes(2, "big")
    elif kind == _U32:
        assert isinstance(value, int)
        buf += value.to_bytes(4, "big")
    elif kind == _VARINT:
        assert isinstance(value, int)
        encode_varint(value, buf)
    elif kind == _UTF8:
        assert isinstance(value, str)
        encode_utf8(value, buf)
    elif kind == _BINARY:
        assert isinstance(value, bytes)
        encode_binary(value, buf)
    else:
        assert isinstance(value, tuple)
        encode_utf8(value[0], buf)
        encode_utf8(value[1], buf)


def decode_properties(data: Buffer, pos: int, end: int, packet: int) -> tuple[Properties, int]:
    """Read a property length and the properties after it; ``packet`` is a PacketType or WILL."""
    length, pos = decode_varint(data, pos, end)
    if length == 0:
        return NO_PROPERTIES, pos
    stop = pos + length
    if stop > end:
        raise malformed("property length runs past the end of the packet")
    values: dict[str, object] = {}
    user: list[tuple[str, str]] = []
    sub_ids: list[int] = []
    while pos < stop:
        ident, pos = decode_varint(data, pos, stop)
        entry = PROPERTY_TABLE.get(ident)
        if entry is None:
            raise malformed(f"unknown property 0x{ident:02X}")
        name, kind, allowed = entry
        if packet not in allowed:
            raise malformed(f"property {name} is not allowed in this packet")
        value: object
        if kind == _BYTE:
            value, pos = decode_byte(data, pos, stop)
        elif kind == _U16:
            value, pos = decode_uint16(data, pos, stop)
        elif kind == _U32:
            value, pos = decode_uint32(data, pos, stop)
        elif kind == _VARINT:
            value, pos = decode_varint(data, pos, stop)
        elif kind == _UTF8:
            value, pos = decode_utf8(data, pos, stop)
        elif kind == _BINARY:
            value, pos = decode_binary(data, pos, stop)
        else:
            key, pos = decode_utf8(data, pos, stop)
            val, pos = decode_utf8(data, pos, stop)
            value = (key, val)
        if ident in _BOOLEAN_PROPERTIES and value not in (0, 1):
            raise protocol_error(f"property {name} must be 0 or 1, got {value!r}")
        if ident in _NONZERO_PROPERTIES and value == 0:
            raise protocol_error(f"property {name} must not be 0")
        if ident == 0x26:
            user.append(value)  # type: ignore[arg-type]
        elif ident == 0x0B:
            if sub_ids and packet != PacketType.PUBLISH:
                raise protocol_error("subscription identifier given twice")
            sub_ids.append(value)  # type: ignore[arg-type]
        elif name in values:
            raise protocol_error(f"property {name} given twice")
        else:
            values[name] = value
    return Properties(user_properties=user, subscription_identifiers=sub_ids,
                      **values), pos  # type: ignore[arg-type]
