"""Packet type -> packet class, and the fixed-header flags each type must carry."""

from __future__ import annotations

from ._packets import (
    Auth,
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    PingReq,
    PingResp,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
)
from ._properties import PacketType
from ._subscribe_packets import SubAck, Subscribe, UnsubAck, Unsubscribe

PACKET_CLASSES: dict[int, type[Packet]] = {
    cls.TYPE: cls
    for cls in (Connect, ConnAck, Publish, PubAck, PubRec, PubRel, PubComp, Subscribe, SubAck,
                Unsubscribe, UnsubAck, PingReq, PingResp, Disconnect, Auth)
}

# MQTT-2.1.3-1 (3.1.1: MQTT-2.2.2-1): the fixed-header flags every packet but PUBLISH must carry.
REQUIRED_FLAGS: dict[int, int] = {t: 0 for t in PACKET_CLASSES}
REQUIRED_FLAGS.update({PacketType.PUBREL: 2, PacketType.SUBSCRIBE: 2, PacketType.UNSUBSCRIBE: 2})
del REQUIRED_FLAGS[PacketType.PUBLISH]
