"""One small typed class per MQTT control packet, for MQTT 3.1 (level 3), 3.1.1 (4) and 5.0 (5).

Each class knows its wire form: ``encode(version)`` gives the whole packet, ``decode(flags, body,
version)`` reads a complete body (the fixed header was read by the decoder). Fields absent from
older versions (properties, reason codes) are simply not put on the wire for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ._codec import (
    Buffer,
    check_utf8,
    decode_binary,
    decode_byte,
    decode_uint16,
    decode_utf8,
    encode_binary,
    encode_uint16,
    encode_utf8,
    encode_varint,
)
from ._errors import MQTTError, malformed, protocol_error
from ._properties import NO_PROPERTIES, WILL, PacketType, Properties, decode_properties
from ._reason_codes import ReasonCode

# A payload is bytes, or a view of a large packet's own receive buffer (never copied).
Payload = bytes | memoryview

MQTT_3_1 = 3
MQTT_3_1_1 = 4
MQTT_5 = 5
PROTOCOL_NAMES = {MQTT_3_1: "MQIsdp", MQTT_3_1_1: "MQTT", MQTT_5: "MQTT"}


class UnsupportedProtocolVersion(MQTTError):
    """A CONNECT with a known protocol name but a level we do not speak (MQTT-3.1.2-2)."""

    def __init__(self, level: int) -> None:
        super().__init__(ReasonCode.UNSUPPORTED_PROTOCOL_VERSION,
                         f"unsupported protocol level {level}")
        self.level = level


def _frame(first_byte: int, body: bytes | bytearray) -> bytes:
    out = bytearray((first_byte,))
    encode_varint(len(body), out)
    out += body
    return bytes(out)


def _check_end(pos: int, end: int) -> None:
    if pos != end:
        raise malformed(f"{end - pos} unexpected bytes at the end of the packet")


def _packet_id(data: Buffer, pos: int, end: int) -> tuple[int, int]:
    packet_id, pos = decode_uint16(data, pos, end)
    if packet_id == 0:
        raise protocol_error("packet identifier 0")  # MQTT-2.2.1-3
    return packet_id, pos


class Packet:
    """Base of all packet classes."""

    __slots__ = ()
    # Declared here and set after each class rather than in its body: mypyc would make a
    # class variable of a dataclass one of its fields (mypyc issue 1122).
    TYPE: ClassVar[PacketType]
    # The first byte of the packets that have one form (acknowledgements, DISCONNECT, AUTH),
    # and the whole of those that have no body (PINGREQ, PINGRESP).
    FIRST_BYTE: ClassVar[int]
    WIRE: ClassVar[bytes]

    def encode(self, version: int) -> bytes:
        raise NotImplementedError

    @classmethod
    def decode(cls, flags: int, data: Buffer, start: int, end: int, version: int) -> Packet:
        raise NotImplementedError


@dataclass(slots=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    properties: Properties = NO_PROPERTIES


# CONNECT and CONNACK, made once per connection, have their __init__ written out as well (see
# Publish below): a storm of connections runs them thousands of times a second.


@dataclass(slots=True, init=False)
class Connect(Packet):
    client_id: str
    protocol_version: int = MQTT_3_1_1
    clean_start: bool = True
    keep_alive: int = 60
    will: Will | None = None
    username: str | None = None
    password: bytes | None = None
    properties: Properties = NO_PROPERTIES
    # A bridge announcing itself the way Mosquitto's do ("try_private"): the protocol level's
    # top bit set (3.x only). The broker then neither echoes its own messages back to it nor
    # clears the retain flag of what it forwards.
    bridge: bool = False

    def __init__(self, client_id: str, protocol_version: int = MQTT_3_1_1,
                 clean_start: bool = True, keep_alive: int = 60, will: Will | None = None,
                 username: str | None = None, password: bytes | None = None,
                 properties: Properties = NO_PROPERTIES, bridge: bool = False) -> None:
        self.client_id = client_id
        self.protocol_version = protocol_version
        self.clean_start = clean_start
        self.keep_alive = keep_alive
        self.will = will
        self.username = username
        self.password = password
        self.properties = properties
        self.bridge = bridge

    def encode(self, version: int | None = None) -> bytes:
        version = self.protocol_version if version is None else version
        body = bytearray()
        encode_utf8(PROTOCOL_NAMES[version], body)
        body.append(version | (0x80 if self.bridge and version != MQTT_5 else 0))
        flags = 0
        if self.clean_start:
            flags |= 0x02
        if self.will is not None:
            flags |= 0x04 | (self.will.qos << 3) | (0x20 if self.will.retain else 0)
        if self.password is not None:
            flags |= 0x40
        if self.username is not None:
            flags |= 0x80
        body.append(flags)
        encode_uint16(self.keep_alive, body)
        if version == MQTT_5:
            body += self.properties.encode()
        encode_utf8(self.client_id, body)
        if self.will is not None:
            if version == MQTT_5:
                body += self.will.properties.encode()
            encode_utf8(self.will.topic, body)
            encode_binary(self.will.payload, body)
        if self.username is not None:
            encode_utf8(self.username, body)
        if self.password is not None:
            encode_binary(self.password, body)
        return _frame(0x10, body)

    @classmethod
    def decode(cls, flags: int, data: Buffer, start: int, end: int, version: int) -> Connect:
        if data[start : start + 6] == b"\x00\x04MQTT":  # as every 3.1.1 and 5 client's starts
            name, pos = "MQTT", start + 6
        else:
            name, pos = decode_utf8(data, start, end)
        level, pos = decode_byte(data, pos, end)
        bridge = bool(level & 0x80) and (level & 0x7F) in (MQTT_3_1, MQTT_3_1_1)
        if bridge:
            level &= 0x7F  # Mosquitto's try_private: a bridge (not in the specification)
        if name not in ("MQTT", "MQIsdp"):
            # MQTT-3.1.2-1: not an MQTT client, so no CONNACK it could read either.
            raise protocol_error(f"unknown protocol name {name!r}")
        if PROTOCOL_NAMES.get(level) != name:
            raise UnsupportedProtocolVersion(level)
        flag_byte, pos = decode_byte(data, pos, end)
        if flag_byte & 0x01:
            raise malformed("reserved CONNECT flag is set")  # MQTT-3.1.2-3
        will_flag = bool(flag_byte & 0x04)
        will_qos = (flag_byte >> 3) & 0x03
        will_retain = bool(flag_byte & 0x20)
        has_password = bool(flag_byte & 0x40)
        has_username = bool(flag_byte & 0x80)
        if will_qos == 3:
            raise malformed("will QoS 3")  # MQTT-3.1.2-14 (3.1.1)
        if not will_flag and (will_qos or will_retain):
            raise malformed("will QoS or retain set without a will")  # MQTT-3.1.2-11, -13
        if has_password and not has_username and level != MQTT_5:
            raise malformed("password without user name")  # MQTT-3.1.2-22 (3.1.1)
        keep_alive, pos = decode_uint16(data, pos, end)
        properties = NO_PROPERTIES
        if level == MQTT_5:
            properties, pos = decode_properties(data, pos, end, PacketType.CONNECT)
        client_id, pos = decode_utf8(data, pos, end)  # MQTT-3.1.3-3, -4
        will = None
        if will_flag:
            will_props = NO_PROPERTIES
            if level == MQTT_5:
                will_props, pos = decode_properties(data, pos, end, WILL)
            will_topic, pos = decode_utf8(data, pos, end)
            will_payload, pos = decode_binary(data, pos, end)
            will = Will(will_topic, will_payload, will_qos, will_retain, will_props)
        username = password = None
        if has_username:
            username, pos = decode_utf8(data, pos, end)
        if has_password:
            password, pos = decode_binary(data, pos, end)
        _check_end(pos, end)
        return cls(client_id, level, bool(flag_byte & 0x02), keep_alive, will, username,
                   password, properties, bridge)


Connect.TYPE = PacketType.CONNECT


@dataclass(slots=True, init=False)
class ConnAck(Packet):
    session_present: bool = False
    reason_code: int = 0  # a v3 return code (0-5) or a v5 reason code
    properties: Properties = NO_PROPERTIES

    def __init__(self, session_present: bool = False, reason_code: int = 0,
                 properties: Properties = NO_PROPERTIES) -> None:
        self.session_present = session_present
        self.reason_code = reason_code
        self.properties = properties

    def encode(self, version: int) -> bytes:
        flags = 1 if self.session_present else 0
        if version != MQTT_5:
            return bytes((0x20, 2, flags, self.reason_code))
        return _frame(0x20, bytes((flags, self.reason_code)) + self.properties.encode())

    @classmethod
    def decode(cls, flags: int, data: Buffer, start: int, end: int, version: int) -> ConnAck:
        ack_flags, pos = decode_byte(data, start, end)
        if ack_flags & 0xFE:
            raise malformed("reserved CONNACK flags set")  # MQTT-3.2.2-1
        code, pos = decode_byte(data, pos, end)
        properties = NO_PROPERTIES
        if version == MQTT_5 and pos < end:
            properties, pos = decode_properties(data, pos, end, PacketType.CONNACK)
        _check_end(pos, end)
        return cls(bool(ack_flags), code, properties)


ConnAck.TYPE = PacketType.CONNACK


def encode_publish_header(topic: bytes, qos: int, retain: bool, dup: bool, packet_id: int,
                          properties: bytes | None, payload_size: int) -> bytes:
    """Everything of a PUBLISH but its payload, so that the payload is never copied.

    ``topic`` is the topic as it goes on the wire, with its two-byte length; ``properties`` the
    encoded property block for v5, ``None`` for v3.
    """
    first = 0x30 | (qos << 1) | (0x08 if dup else 0) | (0x01 if retain else 0)
    rest = topic
    if qos:
        rest += packet_id.to_bytes(2, "big")
    if properties is not None:
        rest += properties
    size = len(rest) + payload_size
    if size < 0x80:
        return bytes((first, size)) + rest
    out = bytearray((first,))
    encode_varint(size, out)
    out += rest
    return bytes(out)


def prefixed_topic(topic: str) -> bytes:
    raw = topic.encode()
    return len(raw).to_bytes(2, "big") + raw


# The packets made once per message have their __init__ written out (init=False): mypyc
# compiles it, where the one @dataclass writes would run as interpreted code.


@dataclass(slots=True, init=False)
class Publish(Packet):
    topic: str
    payload: Payload = b""
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int = 0
    properties: Properties = NO_PROPERTIES

    def __init__(self, topic: str, payload: Payload = b"", qos: int = 0, retain: bool = False,
                 dup: bool = False, packet_id: int = 0,
                 properties: Properties = NO_PROPERTIES) -> None:
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.dup = dup
        self.packet_id = packet_id
        self.properties = properties

    def encode(self, version: int) -> bytes:
        props = self.properties.encode() if version == MQTT_5 else None
        header = encode_publish_header(prefixed_topic(self.topic), self.qos, self.retain, self.dup,
                                       self.packet_id, props, len(self.payload))
        return header + self.payload

    @classmethod
    def decode(cls, flags: int, data: Buffer, start: int, end: int, version: int) -> Publish:
        qos = (flags >> 1) & 0x03
        if qos == 3:
            raise malformed("PUBLISH with QoS 3")  # MQTT-3.3.1-4
        dup = bool(flags & 0x08)
        if dup and qos == 0:
            raise malformed("DUP set on a QoS 0 PUBLISH")  # MQTT-3.3.1-2
        # decode_utf8, inlined: this runs once per message through the broker.
        pos = start + 2 + ((data[start] << 8) | data[start + 1]) if end - start >= 2 else end + 1
        if pos > end:
            raise malformed("topic name cut short")
        topic = check_utf8(data[start + 2:pos])  # MQTT-3.3.2-1
        if "+" in topic or "#" in topic:
            raise MQTTError(ReasonCode.TOPIC_NAME_INVALID,
                            "wildcard in a topic name")  # MQTT-3.3.2-2
        packet_id = 0
        if qos:
            packet_id, pos = _packet_id(data, pos, end)
        properties = NO_PROPERTIES
        if version == MQTT_5:
            properties, pos = decode_properties(data, pos, end, PacketType.PUBLISH)
        # A bytearray here is a large packet's own buffer, handed over for good: its payload is
        # a view of it, not a copy (see Decoder).
        payload = data[pos:end] if type(data) is bytes else memoryview(data)[pos:end]
        return cls(topic, payload, qos, bool(flags & 0x01), dup, packet_id, properties)


Publish.TYPE = PacketType.PUBLISH


@dataclass(slots=True, init=False)
class _Ack(Packet):
    """PUBACK, PUBREC, PUBREL and PUBCOMP share one layout (MQTT 5.0 3.4-3.7)."""

    packet_id: int
    reason_code: int = 0
    properties: Properties = NO_PROPERTIES

    def __init__(self, packet_id: int, reason_code: int = 0,
                 properties: Properties = NO_PROPERTIES) -> None:
        self.packet_id = packet_id
        self.reason_code = reason_code
        self.properties = properties

    def encode(self, version: int) -> bytes:
        pid = self.packet_id.to_bytes(2, "big")
        if version != MQTT_5 or (self.reason_code == 0 and self.properties is NO_PROPERTIES):
            return bytes((self.FIRST_BYTE, 2)) + pid
        props = self.properties.encode()
        if props == b"\x00":
            return bytes((self.FIRST_BYTE, 3)) + pid + bytes((self.reason_code,))
        return _frame(self.FIRST_BYTE, pid + bytes((self.reason_code,)) + props)

    @classmethod
    def decode(cls, flags: int, data: Buffer, start: int, end: int, version: int) -> _Ack:
        packet_id, pos = _packet_id(data, start, end)
        reason = 0
        properties = NO_PROPERTIES
        if version == MQTT_5:
            if pos < end:
                reason, pos = decode_byte(data, pos, end)
            if pos < end:
                properties, pos = decode_properties(data, pos, end, cls.TYPE)
        _check_end(pos, end)
        return cls(packet_id, reason, properties)


@dataclass(slots=True, init=False)
class PubAck(_Ack):
    """PUBACK: a QoS 1 PUBLISH received (MQTT 5.0 3.4)."""


PubAck.TYPE = PacketType.PUBACK
PubAck.FIRST_BYTE = 0x40


@dataclass(slots=True, init=False)
class PubRec(_Ack):
    """PUBREC: a QoS 2 PUBLISH received, first step (MQTT 5.0 3.5)."""


PubRec.TYPE = PacketType.PUBREC
PubRec.FIRST_BYTE = 0x50


@dataclass(slots=True, init=False)
class PubRel(_Ack):
    """PUBREL: the QoS 2 message released, second step (MQTT 5.0 3.6)."""


PubRel.TYPE = PacketType.PUBREL
PubRel.FIRST_BYTE = 0x62  # MQTT-3.6.1-1: flags 0010


@dataclass(slots=True, init=False)
class PubComp(_Ack):
    """PUBCOMP: the QoS 2 exchange complete, third step (MQTT 5.0 3.7)."""


PubComp.TYPE = PacketType.PUBCOMP
PubComp.FIRST_BYTE = 0x70


@dataclass(slots=True)
class _Empty(Packet):
    """PINGREQ and PINGRESP: a fixed header and nothing else."""

    def encode(self, version: int) -> bytes:
        return self.WIRE

    @classmethod
    def decode(cls, flags: int, data: Buffer, start: int, end: int, version: int) -> _Empty:
        _check_end(start, end)
        return cls()


@dataclass(slots=True)
class PingReq(_Empty):
    """PINGREQ (MQTT 5.0 3.12)."""


PingReq.TYPE = PacketType.PINGREQ
PingReq.WIRE = b"\xc0\x00"


@dataclass(slots=True)
class PingResp(_Empty):
    """PINGRESP (MQTT 5.0 3.13)."""


PingResp.TYPE = PacketType.PINGRESP
PingResp.WIRE = b"\xd0\x00"


@dataclass(slots=True)
class _ReasonOnly(Packet):
    """DISCONNECT and AUTH: an optional reason code and optional properties (MQTT 5.0 3.14,
    3.15); both shrink to a bare fixed header when they carry a success and nothing else."""

    reason_code: int = 0
    properties: Properties = NO_PROPERTIES

    def encode(self, version: int) -> bytes:
        if version != MQTT_5 or (self.reason_code == 0 and self.properties is NO_PROPERTIES):
            return bytes((self.FIRST_BYTE, 0))
        return _frame(self.FIRST_BYTE, bytes((self.reason_code,)) + self.properties.encode())

    @classmethod
    def decode(cls, flags: int, data: Buffer, start: int, end: int, version: int) -> _ReasonOnly:
        if version != MQTT_5:
            _check_end(start, end)
            return cls()
        reason, pos = (decode_byte(data, start, end) if end > start else (0, start))
        properties = NO_PROPERTIES
        if pos < end:
            properties, pos = decode_properties(data, pos, end, cls.TYPE)
        _check_end(pos, end)
        return cls(reason, properties)


@dataclass(slots=True)
class Disconnect(_ReasonOnly):
    """DISCONNECT (MQTT 5.0 3.14)."""


Disconnect.TYPE = PacketType.DISCONNECT
Disconnect.FIRST_BYTE = 0xE0


@dataclass(slots=True)
class Auth(_ReasonOnly):
    """AUTH (MQTT 5.0 3.15). Only MQTT 5 has it: the decoder treats type 15 as reserved for
    earlier versions."""


Auth.TYPE = PacketType.AUTH
Auth.FIRST_BYTE = 0xF0

