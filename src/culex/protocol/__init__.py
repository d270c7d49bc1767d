"""The sans-IO MQTT protocol: bytes in, packets out, packets in, bytes out.

Nothing here imports asyncio, sockets, clocks or logging.
"""

from ._codec import MAX_VARINT, check_utf8, decode_varint, encode_utf8, encode_varint, is_utf8
from ._decoder import MAX_PACKET_SIZE, AssemblyBudget, Decoder
from ._errors import MQTTError, malformed, protocol_error
from ._packets import (
    MQTT_3_1,
    MQTT_3_1_1,
    MQTT_5,
    Auth,
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    Payload,
    PingReq,
    PingResp,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    UnsupportedProtocolVersion,
    Will,
    encode_publish_header,
    prefixed_topic,
)
from ._properties import NO_PROPERTIES, PacketType, Properties, decode_properties
from ._reason_codes import V5_TO_V3_CONNACK, ConnackCode, ReasonCode
from ._subscribe_packets import SubAck, Subscribe, SubscriptionRequest, UnsubAck, Unsubscribe
from ._topics import (
    SHARE_PREFIX,
    is_valid_topic_filter,
    is_valid_topic_name,
    parse_filter,
    parse_shared,
    topic_matches,
)

__all__ = [
    "MAX_PACKET_SIZE",
    "MAX_VARINT",
    "MQTT_3_1",
    "MQTT_3_1_1",
    "MQTT_5",
    "NO_PROPERTIES",
    "SHARE_PREFIX",
    "V5_TO_V3_CONNACK",
    "AssemblyBudget",
    "Auth",
    "ConnAck",
    "ConnackCode",
    "Connect",
    "Decoder",
    "Disconnect",
    "MQTTError",
    "Packet",
    "PacketType",
    "Payload",
    "PingReq",
    "PingResp",
    "Properties",
    "PubAck",
    "PubComp",
    "PubRec",
    "PubRel",
    "Publish",
    "ReasonCode",
    "SubAck",
    "Subscribe",
    "SubscriptionRequest",
    "UnsubAck",
    "Unsubscribe",
    "UnsupportedProtocolVersion",
    "Will",
    "check_utf8",
    "decode_properties",
    "decode_varint",
    "encode_publish_header",
    "encode_utf8",
    "encode_varint",
    "is_utf8",
    "is_valid_topic_filter",
    "is_valid_topic_name",
    "malformed",
    "parse_filter",
    "parse_shared",
    "prefixed_topic",
    "protocol_error",
    "topic_matches",
]
