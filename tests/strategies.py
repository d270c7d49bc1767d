"""Hypothesis strategies for every packet kind of every protocol version."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from culex.protocol import (
    MQTT_3_1,
    MQTT_3_1_1,
    MQTT_5,
    NO_PROPERTIES,
    Auth,
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    PacketType,
    PingReq,
    PingResp,
    Properties,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    SubAck,
    Subscribe,
    SubscriptionRequest,
    UnsubAck,
    Unsubscribe,
    Will,
)
from culex.protocol._properties import PROPERTY_TABLE, WILL

VERSIONS = (MQTT_3_1, MQTT_3_1_1, MQTT_5)

# MQTT strings: any Unicode scalar value but U+0000 (no surrogates: they cannot be encoded).
text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=12)
topic_names = text.filter(lambda t: "+" not in t and "#" not in t)
binary = st.binary(max_size=16)
packet_ids = st.integers(1, 0xFFFF)

_BOOLEAN = {0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A}
_NONZERO = {0x0B, 0x21, 0x27}


def _value(ident: int, kind: int) -> st.SearchStrategy[Any]:
    if ident in _BOOLEAN:
        return st.integers(0, 1)
    low = 1 if ident in _NONZERO else 0
    return [st.integers(0, 255), st.integers(low, 0xFFFF), st.integers(low, 0xFFFFFFFF),
            st.integers(low, 268_435_455), text, binary, st.tuples(text, text)][kind]


def properties(packet: int) -> st.SearchStrategy[Properties]:
    @st.composite
    def build(draw: st.DrawFn) -> Properties:
        values: dict[str, Any] = {}
        for ident, (name, kind, allowed) in PROPERTY_TABLE.items():
            if packet not in allowed or not draw(st.booleans()):
                continue
            if name == "user_properties":
                values[name] = draw(st.lists(_value(ident, kind), max_size=3))
            elif name == "subscription_identifiers":
                size = 3 if packet == PacketType.PUBLISH else 1
                values[name] = draw(st.lists(_value(ident, kind), min_size=1, max_size=size))
            else:
                values[name] = draw(_value(ident, kind))
        return Properties(**values) if values else NO_PROPERTIES

    return build()


def _props(version: int, packet: int) -> st.SearchStrategy[Properties]:
    return properties(packet) if version == MQTT_5 else st.just(NO_PROPERTIES)


def _reason(version: int) -> st.SearchStrategy[int]:
    return st.integers(0, 255) if version == MQTT_5 else st.just(0)


def connects(version: int) -> st.SearchStrategy[Connect]:
    v5 = version == MQTT_5
    wills = st.builds(Will, topic_names, binary, st.integers(0, 2), st.booleans(),
                      _props(version, WILL))

    @st.composite
    def build(draw: st.DrawFn) -> Connect:
        username = draw(st.none() | text)
        password = draw(st.none() | binary)
        if username is None and not v5:
            password = None  # MQTT-3.1.2-22 (3.1.1)
        return Connect(draw(text), version, draw(st.booleans()), draw(st.integers(0, 0xFFFF)),
                       draw(st.none() | wills), username, password,
                       draw(_props(version, PacketType.CONNECT)))

    return build()


def packets(version: int) -> st.SearchStrategy[Packet]:
    v5 = version == MQTT_5
    @st.composite
    def publishes(draw: st.DrawFn) -> Publish:
        qos = draw(st.integers(0, 2))
        return Publish(draw(topic_names), draw(st.binary(max_size=64)), qos, draw(st.booleans()),
                       draw(st.booleans()) if qos else False,
                       draw(packet_ids) if qos else 0, draw(_props(version, PacketType.PUBLISH)))

    requests = (st.builds(SubscriptionRequest, text, st.integers(0, 2), st.booleans(),
                          st.booleans(), st.integers(0, 2))
                if v5 else st.builds(SubscriptionRequest, text, st.integers(0, 2)))

    def ack(cls: type, kind: int) -> st.SearchStrategy[Packet]:
        return st.builds(cls, packet_ids, _reason(version), _props(version, kind))

    kinds = [
        connects(version),
        st.builds(ConnAck, st.booleans(), st.integers(0, 255),
                  _props(version, PacketType.CONNACK)),
        publishes(),
        ack(PubAck, PacketType.PUBACK),
        ack(PubRec, PacketType.PUBREC),
        ack(PubRel, PacketType.PUBREL),
        ack(PubComp, PacketType.PUBCOMP),
        st.builds(Subscribe, packet_ids, st.lists(requests, min_size=1, max_size=4),
                  _props(version, PacketType.SUBSCRIBE)),
        st.builds(SubAck, packet_ids, st.lists(st.integers(0, 255), max_size=4),
                  _props(version, PacketType.SUBACK)),
        st.builds(Unsubscribe, packet_ids, st.lists(text, min_size=1, max_size=4),
                  _props(version, PacketType.UNSUBSCRIBE)),
        st.builds(UnsubAck, packet_ids,
                  st.lists(st.integers(0, 255), max_size=4) if v5 else st.just([]),
                  _props(version, PacketType.UNSUBACK)),
        st.just(PingReq()),
        st.just(PingResp()),
        st.builds(Disconnect, _reason(version), _props(version, PacketType.DISCONNECT)),
    ]
    if v5:
        kinds.append(st.builds(Auth, st.integers(0, 255), properties(PacketType.AUTH)))
    return st.one_of(kinds)
