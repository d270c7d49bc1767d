"""The sans-IO MQTT protocol: bytes in, packets out, packets in, bytes out.

Nothing here imports asyncio, sockets, clocks or logging.
"""

from ._codec import MAX_VARINT, check_utf8, decode_varint, encode_utf8, encode_varint
from ._decoder import MAX_PACKET_SIZE, Decoder
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
    PingReq,
    PingResp,
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
    UnsupportedProtocolVersion,
    Will,
    encode_publish_header,
)
from ._properties import NO_PROPERTIES, PacketType, Properties
from ._reason_codes import V5_TO_V3_CONNACK, ConnackCode, ReasonCode
from ._topics import (
    SHARE_PREFIX,
    is_valid_topic_filter,
    is_valid_topic_name,
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
    "Auth",
    "ConnAck",
    "ConnackCode",
    "Connect",
    "Decoder",
    "Disconnect",
    "MQTTError",
    "Packet",
    "PacketType",
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
    "decode_varint",
    "encode_publish_header",
    "encode_utf8",
    "encode_varint",
    "is_valid_topic_filter",
    "is_valid_topic_name",
    "malformed",
    "parse_shared",
    "protocol_error",
    "topic_matches",
]
