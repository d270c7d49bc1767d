"""An application message as the broker holds it, and its encoding for subscribers.

One message goes to many subscribers; what differs between their copies is small (QoS, packet
id, RETAIN, DUP, subscription identifiers, remaining expiry), so the topic and the property
block are encoded once per message and the payload is never copied.
"""

from __future__ import annotations

import math
from dataclasses import replace

from ..protocol import (
    NO_PROPERTIES,
    Payload,
    Properties,
    encode_publish_header,
    encode_varint,
    prefixed_topic,
)


class Message:
    __slots__ = ("_caching", "_headers", "_props_block", "_topic_bytes", "expiry_at", "payload",
                 "properties", "qos", "retain", "sender", "topic")

    def __init__(self, topic: str, payload: Payload, qos: int = 0, retain: bool = False,
                 properties: Properties = NO_PROPERTIES, expiry_at: float | None = None,
                 sender: str | None = None) -> None:
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        # The properties to forward: what the publisher sent less Topic Alias, Subscription
        # Identifier and Message Expiry Interval, which are set per delivery.
        self.properties = properties
        self.expiry_at = expiry_at  # on the broker's monotonic clock
        self.sender = sender  # publisher's client id, for No Local
        self._topic_bytes: bytes | None = None
        self._props_block: bytes | None = None  # encoded forwarded properties, with length
        # Encoded forms shared by every delivery of that form: key 2 * version5 + retain for a
        # QoS 0 header, that + 4 for a whole QoS 0 packet of a small payload.
        self._headers: dict[int, bytes] | None = None
        self._caching = True  # False for a message kept for long (see kept)

    @classmethod
    def from_publish(cls, topic: str, payload: Payload, qos: int, retain: bool,
                     properties: Properties, now: float, sender: str | None) -> Message:
        expiry_at = None
        if properties is not NO_PROPERTIES:
            interval = properties.message_expiry_interval
            if interval is not None:
                expiry_at = now + interval
            if (interval is not None or properties.topic_alias is not None
                    or properties.subscription_identifiers):
                properties = replace(properties, message_expiry_interval=None,
                                     topic_alias=None, subscription_identifiers=[])
        return cls(topic, payload, qos, retain, properties, expiry_at, sender)

    def expiring(self, expiry_at: float | None) -> Message:
        """This message, to expire at ``expiry_at`` instead (a will, at its publication)."""
        return Message(self.topic, self.payload, self.qos, self.retain, self.properties,
                       expiry_at, self.sender)

    def kept(self) -> Message:
        """A copy to keep for long (the retained message of its topic) sharing the payload:
        it caches no encoded form, which would live as long as it (the whole packet of a small
        payload, per protocol family: 100,000 retained messages sent once to a new
        subscriber would keep 25 MB of them)."""
        copy = Message(self.topic, self.payload, self.qos, self.retain, self.properties,
                       self.expiry_at, self.sender)
        copy._caching = False
        return copy

    def expired(self, now: float) -> bool:
        return self.expiry_at is not None and now >= self.expiry_at

    def topic_bytes(self) -> bytes:
        """The topic as it goes on the wire: two bytes of length, then UTF-8."""
        if self._topic_bytes is None:
            if not self._caching:
                return prefixed_topic(self.topic)
            self._topic_bytes = prefixed_topic(self.topic)
        return self._topic_bytes

    def _v5_properties(self, sub_ids: tuple[int, ...], now: float, alias: int = 0) -> bytes:
        if self._props_block is None:
            self._props_block = self.properties.encode()
        if not sub_ids and self.expiry_at is None and not alias:
            return self._props_block  # the same for every such delivery
        # Per-delivery properties go after the forwarded ones, under a new length.
        block = self._props_block
        body = bytearray(block[_varint_len(block):])
        if self.expiry_at is not None:
            # MQTT-3.3.2-6: the interval less the time the message has waited here, never more
            # than was received: (t + 3600) - t can come out as 3600.000000000001 in floating
            # point, which a plain ceil would forward as 3601.
            remaining = max(1, math.ceil(self.expiry_at - now - 1e-6))
            body.append(0x02)
            body += remaining.to_bytes(4, "big")
        if alias:
            body.append(0x23)
            body += alias.to_bytes(2, "big")
        for sub_id in sub_ids:
            body.append(0x0B)
            encode_varint(sub_id, body)
        return _prefixed(bytes(body))

    def publish_header(self, version5: bool, qos: int, retain: bool, dup: bool, packet_id: int,
                       sub_ids: tuple[int, ...], now: float) -> bytes:
        """The PUBLISH packet up to its payload; the caller writes the payload after it.

        QoS 0 copies without per-delivery properties are the same for every subscriber of a
        protocol family, so each such form is encoded once per message.
        """
        if qos == 0 and not sub_ids and self.expiry_at is None and self._caching:
            headers = self._headers
            if headers is None:
                headers = self._headers = {}
            key = 2 * version5 + retain
            header = headers.get(key)
            if header is None:
                props = self._v5_properties((), now) if version5 else None
                header = headers[key] = encode_publish_header(
                    self.topic_bytes(), 0, retain, False, 0, props, len(self.payload))
            return header
        props = self._v5_properties(sub_ids, now) if version5 else None
        return encode_publish_header(self.topic_bytes(), qos, retain, dup, packet_id, props,
                                     len(self.payload))

    def qos0_packet(self, version5: bool, retain: bool) -> bytes:
        """The whole QoS 0 PUBLISH, without per-delivery properties: one bytes object for
        every subscriber of a protocol family (the caller keeps it to small payloads, which
        are worth copying once to be written in one buffer)."""
        key = 2 * version5 + retain + 4
        headers = self._headers
        if headers is not None:
            packet = headers.get(key)
            if packet is not None:
                return packet
        props = self._v5_properties((), 0.0) if version5 else None
        packet = encode_publish_header(self.topic_bytes(), 0, retain, False, 0, props,
                                       len(self.payload)) + self.payload
        if self._caching:
            if headers is None:
                headers = self._headers = {}
            headers[key] = packet
        return packet

    def aliased_header(self, alias: int, known: bool, qos: int, retain: bool, dup: bool,
                       packet_id: int, sub_ids: tuple[int, ...], now: float) -> bytes:
        """An MQTT 5 PUBLISH header with a Topic Alias: the topic too the first time, an empty
        topic once the client ``known``s the alias (MQTT 5.0 3.3.2.3.4)."""
        props = self._v5_properties(sub_ids, now, alias)
        return encode_publish_header(_EMPTY_TOPIC if known else self.topic_bytes(), qos, retain,
                                     dup, packet_id, props, len(self.payload))


_EMPTY_TOPIC = b"\x00\x00"


def _varint_len(data: bytes) -> int:
    for index in range(4):
        if not data[index] & 0x80:
            return index + 1
    raise AssertionError("bad property length")


def _prefixed(body: bytes) -> bytes:
    out = bytearray()
    encode_varint(len(body), out)
    out += body
    return bytes(out)
