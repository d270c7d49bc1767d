"""A cluster session's record in the sessions bucket, and the session read back from it
(see _sessions and docs/cluster.md, Sessions)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import nats.js.errors

from ..persistence import (
    SessionState,
    Snapshot,
    StoredDelivery,
    StoredMessage,
    StoredSession,
    StoredSubscription,
    StoredWill,
)
from ..protocol import parse_filter
from ._envelope import Envelope, decode, encode
from ._subjects import filter_subjects

if TYPE_CHECKING:
    from ..broker import Message

log = logging.getLogger("culex")

NEVER_EXPIRES = 0xFFFFFFFF


def consumer_name(client_id: str) -> str:
    return "s-" + hashlib.sha256(client_id.encode()).hexdigest()[:32]


def record_of(session: SessionState, holder: str | None, keys: dict[object, tuple[str, int]],
              now: float, left: bool = False, inbound: list[Any] | None = None) -> bytes:
    """The session's record, as written in the bucket (``keys``: the stream sequence of each
    message pulled for it; ``now``: the broker's clock; ``left``: its holder stops;
    ``inbound``: its incarnation and count of inbound QoS 2 messages)."""
    client = session.client
    gone = None
    will = None
    if session.connection is None:
        gone = time.time() - max(0.0, now - (session.disconnected_at or 0.0))
        if session.will is not None:
            # A will whose delay runs: if its node dies meanwhile, another publishes it.
            # (A connected client's will is in its claim: see _owners and _liveness.)
            message = session.will
            data = encode(Envelope("", 0, 0, message.qos, message.retain, None, None,
                                   message.properties, bytes(message.payload)))
            will = {"topic": message.topic, "data": base64.b64encode(data).decode(),
                    "delay": session.will_delay, "expiry": session.will_expiry}
    out = []
    for pid, delivery in session.inflight.items():
        key = keys.get(delivery.message)
        if delivery.qos == 2 and key is not None:
            out.append([key[1], pid, delivery.state, delivery.retain,
                        list(delivery.sub_ids)])
    return json.dumps({
        "holder": holder, "expiry": session.expiry_interval, "gone": gone,
        "user": client.username if client is not None else None,
        "cert": client.certificate_subject if client is not None else None,
        "proto": client.protocol_version if client is not None else 4,
        "subs": [[s.topic_filter, s.qos, s.no_local, s.retain_as_published,
                  s.retain_handling, s.identifier]
                 for s in session.subscriptions.values()],
        "out": out, "rel": sorted(session.awaiting_rel or ()), "will": will,
        "left": left, "epoch": inbound[0] if inbound else None,
        "q2in": inbound[1] if inbound else 0}).encode()


async def read_snapshot(js: Any, stream: str, to_message: Callable[[str, bytes], Message | None],
                        client_id: str, record: dict[str, Any]) -> Snapshot:
    """The session of ``record`` as the broker restores it, its QoS 2 messages in flight read
    back from the stream by sequence."""
    will = None
    if record.get("will"):
        found = record["will"]
        envelope = decode(base64.b64decode(found["data"]))
        will = StoredWill(StoredMessage(str(found["topic"]), bytes(envelope.payload), envelope.qos,
                                        envelope.retain, envelope.properties, None),
                          int(found["delay"]), found.get("expiry"))
    session = StoredSession(client_id, int(record["expiry"]), record.get("gone"),
                            record.get("user"), record.get("cert"), int(record["proto"]),
                            will)
    subs = [StoredSubscription(client_id, f, qos, nl, rap, rh, ident)
            for f, qos, nl, rap, rh, ident in record["subs"]]
    messages: dict[int, StoredMessage] = {}
    deliveries = []
    for order, (seq, pid, state, retain, sub_ids) in enumerate(record.get("out", ())):
        try:
            raw = await js.get_msg(stream, seq)
        except nats.js.errors.NotFoundError:
            log.warning("cluster: a QoS 2 message in flight to %r is no longer in the "
                        "stream (message_retention); it is not resent", client_id)
            continue
        message = to_message(raw.subject, raw.data or b"")
        if message is None:
            continue
        messages[seq] = StoredMessage(message.topic, bytes(message.payload), 2,
                                      message.retain, message.properties, None)
        deliveries.append(StoredDelivery(order, client_id, seq, 2, retain,
                                         tuple(sub_ids), pid, state))
    awaiting = [(client_id, pid) for pid in record.get("rel", ())]
    return Snapshot([session], subs, messages, deliveries, awaiting, [])


def expired(record: dict[str, Any]) -> bool:
    gone, expiry = record.get("gone"), int(record.get("expiry", 0))
    return gone is not None and expiry != NEVER_EXPIRES and time.time() - gone >= expiry


def threshold(expiry: int) -> int:
    """How long JetStream keeps the consumer of a session nobody pulls from: a while longer
    than the session's own expiry (0: for ever)."""
    return 0 if expiry >= NEVER_EXPIRES else expiry + 60


def subjects(prefix: str, subs: list[list[Any]]) -> list[str]:
    """The consumer's filter subjects for the session's subscriptions (shared ones are the
    groups' and come another way)."""
    subjects = set()
    for sub in subs:
        group, match_filter = parse_filter(sub[0])
        if group is None:
            subjects.update(filter_subjects(prefix, match_filter))
    return sorted(subjects)

