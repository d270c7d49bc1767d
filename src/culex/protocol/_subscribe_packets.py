"""SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK (MQTT 5.0 3.8-3.11, 3.1.1 3.8-3.11)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ._codec import Buffer, decode_byte, decode_utf8, encode_utf8
from ._errors import malformed, protocol_error
from ._packets import MQTT_5, Packet, _check_end, _frame, _packet_id
from ._properties import NO_PROPERTIES, PacketType, Properties, decode_properties


@dataclass(slots=True, frozen=True)
class SubscriptionRequest:
    """One topic filter of a SUBSCRIBE with its options (MQTT 5.0 3.8.3.1)."""

    topic_filter: str
    qos: int = 0
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = 0

    def __reduce__(self) -> tuple[type[SubscriptionRequest], tuple[object, ...]]:
        # As Properties.__reduce__: pickled by its constructor.
        return SubscriptionRequest, (self.topic_filter, self.qos, self.no_local,
                                     self.retain_as_published, self.retain_handling)

    def options_byte(self) -> int:
        return (self.qos | (0x04 if self.no_local else 0)
                | (0x08 if self.retain_as_published else 0) | (self.retain_handling << 4))


@dataclass(slots=True)
class Subscribe(Packet):
    packet_id: int
    subscriptions: list[SubscriptionRequest]
    properties: Properties = NO_PROPERTIES

    def encode(self, version: int) -> bytes:
        body = bytearray(self.packet_id.to_bytes(2, "big"))
        if version == MQTT_5:
            body += self.properties.encode()
        for sub in self.subscriptions:
            encode_utf8(sub.topic_filter, body)
            body.append(sub.options_byte() if version == MQTT_5 else sub.qos)
        return _frame(0x82, body)

    @classmethod
    def decode(cls, flags: int, data: Buffer, start: int, end: int, version: int) -> Subscribe:
        packet_id, pos = _packet_id(data, start, end)
        properties = NO_PROPERTIES
        if version == MQTT_5:
            properties, pos = decode_properties(data, pos, end, PacketType.SUBSCRIBE)
        subs: list[SubscriptionRequest] = []
        while pos < end:
            topic_filter, pos = decode_utf8(data, pos, end)
            options, pos = decode_byte(data, pos, end)
            qos = options & 0x03
            if qos == 3:
                raise malformed("subscription with QoS 3")
            if version == MQTT_5:
                if options & 0xC0:
                    raise malformed("reserved subscription option bits set")  # MQTT-3.8.3-5
                retain_handling = (options >> 4) & 0x03
                if retain_handling == 3:
                    raise protocol_error("retain handling 3")
                subs.append(SubscriptionRequest(topic_filter, qos, bool(options & 0x04),
                                                bool(options & 0x08), retain_handling))
            else:
                if options & 0xFC:
                    raise malformed("reserved subscription option bits set")  # MQTT-3-8.3-4
                subs.append(SubscriptionRequest(topic_filter, qos))
        if not subs:
            raise protocol_error("SUBSCRIBE without a topic filter")  # MQTT-3.8.3-3
        return cls(packet_id, subs, properties)


Subscribe.TYPE = PacketType.SUBSCRIBE


@dataclass(slots=True)
class SubAck(Packet):
    packet_id: int
    reason_codes: list[int]
    properties: Properties = NO_PROPERTIES

    def encode(self, version: int) -> bytes:
        body = bytearray(self.packet_id.to_bytes(2, "big"))
        if version == MQTT_5:
            body += self.properties.encode()
        body += bytes(self.reason_codes)
        return _frame(0x90, body)

    @classmethod
    def decode(cls, flags: int, data: Buffer, start: int, end: int, version: int) -> SubAck:
        packet_id, pos = _packet_id(data, start, end)
        properties = NO_PROPERTIES
        if version == MQTT_5:
            properties, pos = decode_properties(data, pos, end, PacketType.SUBACK)
        return cls(packet_id, list(data[pos:end]), properties)


SubAck.TYPE = PacketType.SUBACK


@dataclass(slots=True)
class Unsubscribe(Packet):
    packet_id: int
    topic_filters: list[str]
    properties: Properties = NO_PROPERTIES

    def encode(self, version: int) -> bytes:
        body = bytearray(self.packet_id.to_bytes(2, "big"))
        if version == MQTT_5:
            body += self.properties.encode()
        for topic_filter in self.topic_filters:
            encode_utf8(topic_filter, body)
        return _frame(0xA2, body)

    @classmethod
    def decode(cls, flags: int, data: Buffer, start: int, end: int, version: int) -> Unsubscribe:
        packet_id, pos = _packet_id(data, start, end)
        properties = NO_PROPERTIES
        if version == MQTT_5:
            properties, pos = decode_properties(data, pos, end, PacketType.UNSUBSCRIBE)
        filters: list[str] = []
        while pos < end:
            topic_filter, pos = decode_utf8(data, pos, end)
            filters.append(topic_filter)
        if not filters:
            raise protocol_error("UNSUBSCRIBE without a topic filter")  # MQTT-3.10.3-2
        return cls(packet_id, filters, properties)


Unsubscribe.TYPE = PacketType.UNSUBSCRIBE


@dataclass(slots=True)
class UnsubAck(Packet):
    packet_id: int
    reason_codes: list[int] = field(default_factory=list)  # MQTT 5 only
    properties: Properties = NO_PROPERTIES

    def encode(self, version: int) -> bytes:
        body = bytearray(self.packet_id.to_bytes(2, "big"))
        if version == MQTT_5:
            body += self.properties.encode()
            body += bytes(self.reason_codes)
        return _frame(0xB0, body)

    @classmethod
    def decode(cls, flags: int, data: Buffer, start: int, end: int, version: int) -> UnsubAck:
        packet_id, pos = _packet_id(data, start, end)
        if version != MQTT_5:
            _check_end(pos, end)
            return cls(packet_id)
        properties, pos = decode_properties(data, pos, end, PacketType.UNSUBACK)
        return cls(packet_id, list(data[pos:end]), properties)


UnsubAck.TYPE = PacketType.UNSUBACK

