"""What an operator may see of and do to a running broker (the dashboard's questions): its
clients and sessions, its retained messages; disconnecting a client, deleting retained
messages. Plain data out, the broker's own methods for the actions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..protocol import MQTT_3_1, MQTT_3_1_1, MQTT_5, ReasonCode
from ._connection import Connection
from ._message import Message

if TYPE_CHECKING:
    from ._broker import Broker

KEEP_BYTES = 4096  # of a retained payload, shown to an operator

VERSIONS = {MQTT_3_1: "3.1", MQTT_3_1_1: "3.1.1", MQTT_5: "5"}


def clients(broker: Broker) -> list[dict[str, Any]]:
    """Every session, connected or not, with what its connection says of itself."""
    found = []
    for session in broker.sessions.values():
        conn = session.connection
        entry: dict[str, Any] = {
            "client_id": session.client_id,
            "connected": conn is not None,
            "username": session.client.username if session.client is not None else None,
            "session_expiry": session.expiry_interval,
            "queued": len(session.queue) if session.queue else 0,
            "inflight": len(session.inflight),
            "subscriptions": sorted(session.subscriptions),
        }
        if isinstance(conn, Connection):
            entry.update(peer=conn.peer, protocol=VERSIONS.get(conn.version, "?"),
                         keep_alive=conn.keep_alive,
                         tls=bool(conn.listener is not None and conn.listener.tls))
        elif conn is not None:
            entry.update(peer="bridge", protocol="bridge")
        found.append(entry)
    return found


def disconnect(broker: Broker, client_id: str) -> bool:
    """Close a client's connection (MQTT 5: DISCONNECT 0x98, administrative action)."""
    session = broker.sessions.get(client_id)
    if session is None or session.connection is None:
        return False
    session.connection.close(ReasonCode.ADMINISTRATIVE_ACTION, "disconnected by an operator")
    return True


def retained(broker: Broker, topic_filter: str, limit: int = 1000) -> list[dict[str, Any]]:
    """The retained messages matching ``topic_filter`` (``limit`` at most)."""
    found = []
    for message in broker.retained.match(topic_filter):
        payload = bytes(message.payload[:KEEP_BYTES])
        try:
            text: str | None = payload.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        found.append({"topic": message.topic, "qos": message.qos,
                      "size": len(message.payload),
                      "truncated": len(message.payload) > KEEP_BYTES,
                      "payload": text if text is not None else payload[:256].hex(),
                      "binary": text is None})
        if len(found) >= limit:
            break
    return found


def delete_retained(broker: Broker, topic_filter: str) -> list[str]:
    """Delete the retained messages matching ``topic_filter``, as an empty retained message
    published on each topic would (subscribers are told, the store forgets them)."""
    topics = [message.topic for message in broker.retained.match(topic_filter)]
    for topic in topics:
        broker.publish(Message(topic, b"", 0, True))
    return topics
