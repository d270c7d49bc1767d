"""Restart: the broker's sessions, subscriptions, queues, in-flight messages and retained
messages rebuilt from what the store kept (``Snapshot``), on the broker's clock."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, NamedTuple

from ..auth import ClientInfo
from ..protocol import parse_filter
from ._message import Message
from ._outgoing import Outgoing
from ._router import Subscription
from ._session import Session

if TYPE_CHECKING:
    from ..observability import Counters
    from ..persistence import Snapshot, Store, StoredMessage
    from ._flow import Backpressure
    from ._outgoing import Limits

log = logging.getLogger("culex")


class Restored(NamedTuple):
    # Each session, how long its client has been away, and whether it was connected when the
    # broker stopped (its connection ended then).
    sessions: list[tuple[Session, float, bool]]
    subscriptions: list[Subscription]
    retained: list[Message]


def rebuild(snapshot: Snapshot, now: float, wall_now: float, limits: Limits,
            counters: Counters, flow: Backpressure, store: Store) -> Restored:
    offset = now - wall_now  # wall clock -> the broker's clock

    def message(stored: StoredMessage, sender: str | None = None) -> Message:
        expiry_at = None if stored.expires_at is None else stored.expires_at + offset
        return Message(stored.topic, stored.payload, stored.qos, stored.retain,
                       stored.properties, expiry_at, sender)

    messages = {message_id: message(stored) for message_id, stored in snapshot.messages.items()}
    sessions: dict[str, Session] = {}
    restored: list[tuple[Session, float, bool]] = []
    for record in snapshot.sessions:
        session = Session(record.client_id, record.expiry_interval, limits, counters, flow)
        # A session that was connected when the broker stopped is disconnected from now.
        disconnected = record.disconnected_at
        offline = 0.0 if disconnected is None else max(0.0, wall_now - disconnected)
        session.detach(now - offline)
        session.set_client(ClientInfo(record.client_id, record.username, None, "",
                                          record.protocol_version, record.cert_subject))
        if record.will is not None:
            session.set_will(message(record.will.message, record.client_id), record.will.delay,
                             record.will.expiry)
        session.keep_in(store, written=True)
        sessions[record.client_id] = session
        restored.append((session, offline, disconnected is None))
    subscriptions = []
    for sub_record in snapshot.subscriptions:
        session = sessions[sub_record.client_id]
        group, match_filter = parse_filter(sub_record.topic_filter)
        sub = Subscription(session, sub_record.topic_filter, sub_record.qos,
                           no_local=sub_record.no_local,
                           retain_as_published=sub_record.retain_as_published,
                           retain_handling=sub_record.retain_handling,
                           identifier=sub_record.identifier, group=group,
                           match_filter=match_filter)
        session.subscribe(sub, written=True)
        subscriptions.append(sub)
    for delivery in snapshot.deliveries:
        out = Outgoing(messages[delivery.message_id], delivery.qos, delivery.retain,
                       delivery.sub_ids, delivery.packet_id, delivery.state)
        sessions[delivery.client_id].restore_delivery(out, delivery)
    for client_id, packet_id in snapshot.awaiting_release:
        sessions[client_id].restore_awaiting(packet_id)
    retained = [message(stored) for stored in snapshot.retained]
    if snapshot.sessions or snapshot.retained:
        log.info("restored %d sessions (%d queued or in-flight messages) and %d retained "
                 "messages", len(snapshot.sessions), len(snapshot.deliveries), len(retained))
    return Restored(restored, subscriptions, retained)
