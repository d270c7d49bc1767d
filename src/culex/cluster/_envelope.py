"""A message as it crosses NATS between culex nodes: a small binary header before the payload
(docs/cluster.md, "Routing"). The topic travels in the subject; everything else MQTT needs is
here, so that the receiving node routes exactly what the publishing node received.

    version 1 | flags (retain, QoS) | node name | process epoch | sequence | publisher's
    client id | remaining expiry | MQTT 5 properties to forward | payload

Pure functions over bytes; no NATS import.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..protocol import NO_PROPERTIES, MQTTError, PacketType, Properties, decode_properties

VERSION = 1
_HEAD = struct.Struct(">BBB")  # version, flags, length of the node name
_COUNTERS = struct.Struct(">IQH")  # epoch, sequence, length of the client id + 1 (0: none)
_EXPIRY = struct.Struct(">d")  # seconds left (< 0: none)


class EnvelopeError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Envelope:
    node: str  # the publishing node
    epoch: int  # its process (a restarted node counts anew)
    seq: int  # its count of messages sent, for QoS 0 de-duplication (0: none)
    qos: int
    retain: bool
    sender: str | None  # the publishing client, for No Local (None: the broker itself)
    expiry: float | None  # seconds left of its Message Expiry Interval
    properties: Properties
    payload: bytes | memoryview


def encode(envelope: Envelope) -> bytes:
    node = envelope.node.encode("ascii")
    sender = b"" if envelope.sender is None else envelope.sender.encode("utf-8")
    flags = (envelope.qos << 1) | int(envelope.retain)
    return b"".join((
        _HEAD.pack(VERSION, flags, len(node)), node,
        _COUNTERS.pack(envelope.epoch, envelope.seq,
                       0 if envelope.sender is None else len(sender) + 1), sender,
        _EXPIRY.pack(-1.0 if envelope.expiry is None else envelope.expiry),
        envelope.properties.encode(), envelope.payload))


def decode(data: bytes) -> Envelope:
    """EnvelopeError for anything encode did not make (another program on culex's subjects)."""
    try:
        version, flags, node_length = _HEAD.unpack_from(data, 0)
        if version != VERSION or flags >> 3:
            raise EnvelopeError(f"unknown envelope version {version} or flags {flags}")
        pos = _HEAD.size
        node = data[pos:pos + node_length].decode("ascii")
        pos += node_length
        epoch, seq, sender_length = _COUNTERS.unpack_from(data, pos)
        pos += _COUNTERS.size
        sender = None
        if sender_length:
            sender = data[pos:pos + sender_length - 1].decode("utf-8")
            pos += sender_length - 1
        (expiry,) = _EXPIRY.unpack_from(data, pos)
        pos += _EXPIRY.size
        properties, pos = decode_properties(data, pos, len(data), PacketType.PUBLISH)
    except (struct.error, UnicodeDecodeError, ValueError, MQTTError) as exc:
        raise EnvelopeError(f"not a culex envelope: {exc}") from None
    qos = (flags >> 1) & 3
    if qos == 3:
        raise EnvelopeError("QoS 3")
    return Envelope(node, epoch, seq, qos, bool(flags & 1), sender,
                    None if expiry < 0 else expiry,
                    properties if properties is not None else NO_PROPERTIES, data[pos:])
