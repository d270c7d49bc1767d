"""Orchestration: connection events -> sessions, router, retained store.

The broker owns no sockets and no event loop. It is given a scheduler (``call_later`` and
``time``, which an asyncio loop provides) and its connections call into it.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any, Protocol

from ..auth import Action, AuthChain, ClientInfo
from ..config import Config
from ..persistence import Snapshot, Store, StoredMessage
from ..protocol import (
    MQTT_5,
    NO_PROPERTIES,
    ConnAck,
    Connect,
    MQTTError,
    Properties,
    Publish,
    ReasonCode,
    Subscribe,
    Unsubscribe,
    is_utf8,
    is_valid_topic_filter,
    is_valid_topic_name,
    parse_shared,
    protocol_error,
)
from ._connection import VERSION_NAMES, Connection
from ._deadlines import Deadlines
from ._message import Message
from ._retained import RetainedStore
from ._router import Router, Subscription
from ._session import NEVER_EXPIRES, WRITTEN_BEFORE, Limits, Outgoing, Session

log = logging.getLogger("culex")

_MAX_RECEIVE = 65535
# The two CONNACKs that accept an MQTT 3.x client, by Session Present.
_V3_CONNACK_ACCEPTED = {present: ConnAck(present, 0).encode(4) for present in (False, True)}
_REFUSALS: dict[int, str] = {
    ReasonCode.BAD_USER_NAME_OR_PASSWORD: "bad user name or password",
    ReasonCode.NOT_AUTHORIZED: "not authorized",
    ReasonCode.SERVER_UNAVAILABLE: "authentication failed inside a plugin",
}


class Scheduler(Protocol):
    """What the broker needs of an event loop (an asyncio loop is one)."""

    def call_later(self, delay: float, callback: Any, *args: Any) -> Any: ...

    def time(self) -> float: ...

    def create_task(self, coro: Coroutine[Any, Any, Any]) -> Any: ...


class Broker:
    def __init__(self, config: Config, scheduler: Scheduler,
                 auth: AuthChain | None = None, store: Store | None = None) -> None:
        self.config = config
        self.scheduler = scheduler
        self.clock = scheduler.time
        self.auth = auth or AuthChain()
        self.store = store or Store()
        self.sessions: dict[str, Session] = {}
        self.router = Router()
        self.retained = RetainedStore()
        self.limits = Limits(config.max_inflight_messages, config.max_queued_messages,
                             config.max_queued_bytes, config.queue_qos0_messages)
        self.connections: set[Connection] = set()
        self.deadlines = Deadlines(scheduler)  # CONNECT timeouts and keep-alive checks

    # -- connections ------------------------------------------------------------------------

    def check_connect(self, conn: Connection, packet: Connect) -> tuple[int, str] | None:
        """The reason to refuse this CONNECT, or None to accept it."""
        config = self.config
        version = packet.protocol_version
        if not packet.client_id and (version == 3 or (version == 4 and not packet.clean_start)):
            # MQTT-3.1.3-8 (3.1.1): an empty id only with a clean session; 3.1 needs one.
            return ReasonCode.CLIENT_IDENTIFIER_NOT_VALID, "empty client id"
        method = packet.properties.authentication_method
        if version == MQTT_5 and method is not None and method not in self.auth.methods:
            return (ReasonCode.BAD_AUTHENTICATION_METHOD,
                    f"authentication method {method!r} not supported")
        will = packet.will
        if will is not None:
            if not is_valid_topic_name(will.topic):
                return ReasonCode.TOPIC_NAME_INVALID, f"invalid will topic {will.topic!r}"
            response = will.properties.response_topic
            if response is not None and not is_valid_topic_name(response):
                # MQTT-3.3.2-14, for the will's properties too (MQTT 5.0 3.1.3.2.5)
                return ReasonCode.PROTOCOL_ERROR, f"invalid will response topic {response!r}"
            if will.qos > config.max_qos:
                return ReasonCode.QOS_NOT_SUPPORTED, f"will QoS {will.qos}"  # MQTT-3.2.2-12
            if will.retain and not config.retain_available:
                return ReasonCode.RETAIN_NOT_SUPPORTED, "retained will"  # MQTT-3.2.2-13
            if will.properties.payload_format_indicator == 1 and not is_utf8(will.payload):
                # MQTT 5.0 3.1.3.2.3
                return ReasonCode.PAYLOAD_FORMAT_INVALID, "will payload is not UTF-8"
        if version != MQTT_5 and packet.keep_alive > config.max_keepalive:
            return (ReasonCode.CLIENT_IDENTIFIER_NOT_VALID,
                    f"keep-alive {packet.keep_alive}s above max_keepalive")
        return None

    def authenticate(self, conn: Connection, packet: Connect) -> None:
        """Decide who the client is; answer through ``conn.authenticated``, now or later."""
        listener = conn.listener
        username = packet.username
        by_certificate = False
        if listener is not None and listener.use_subject_as_username:
            username, by_certificate = conn.cert_subject, True
        elif listener is not None and listener.use_identity_as_username:
            username, by_certificate = conn.cert_cn, True
        # An empty id is replaced first, so that ACL patterns (%c) see the real one.
        conn.client_id = packet.client_id or self._assign_client_id()  # MQTT-3.1.3-6
        client = ClientInfo(conn.client_id, username, packet.password, conn.peer,
                            packet.protocol_version, conn.cert_subject)
        conn.client = client
        method = packet.properties.authentication_method
        if method is not None:
            # MQTT 5.0 4.12: the method decides who the client is; ACLs apply as usual.
            conn.start_exchange(self.auth.methods[method], packet)
            return
        if by_certificate:
            if username is None:
                conn.authenticated(packet, (ReasonCode.NOT_AUTHORIZED,
                                            "no identity in the client certificate"))
            else:
                self.authorize_will(conn, packet, None)  # the TLS layer vouched for it
            return
        anonymous_ok = self.config.anonymous_allowed(listener)
        if not self.auth.authenticators:
            self.authorize_will(conn, packet,
                                 None if anonymous_ok else ReasonCode.NOT_AUTHORIZED)
            return
        task = self.scheduler.create_task(self.auth.authenticate(client, anonymous_ok))

        def done(task: Any) -> None:
            try:
                reason = task.result()
            except Exception:
                log.exception("an authentication plugin failed for client %s",
                              conn.client_id)
                reason = ReasonCode.SERVER_UNAVAILABLE
            self.authorize_will(conn, packet, reason)

        task.add_done_callback(done)

    def authorize_will(self, conn: Connection, packet: Connect, reason: int | None) -> None:
        if reason is not None:
            why = _REFUSALS.get(reason, "refused")
            if reason == ReasonCode.NOT_AUTHORIZED and conn.client is not None \
                    and conn.client.username is None:
                why = "anonymous clients are not allowed on this listener"
            conn.authenticated(packet, (reason, why))
            return
        will = packet.will
        if (will is not None and conn.client is not None
                and not self.auth.authorize(conn.client, Action.PUBLISH, will.topic)):
            conn.authenticated(packet, (ReasonCode.NOT_AUTHORIZED,
                                        f"will topic {will.topic!r} not allowed"))
            return
        conn.authenticated(packet, None)

    def connect(self, conn: Connection, packet: Connect) -> None:
        """Accept ``packet`` on ``conn``: take over or create the session, answer CONNACK."""
        config = self.config
        now = self.clock()
        v5 = packet.protocol_version == MQTT_5
        props = packet.properties
        client_id = conn.client_id
        if v5:
            expiry = props.session_expiry_interval or 0
        elif packet.clean_start:
            expiry = 0
        elif config.persistent_client_expiration is not None:
            expiry = config.persistent_client_expiration
        else:
            expiry = NEVER_EXPIRES
        conn.connect_expiry = expiry

        existing = self.sessions.get(client_id)
        if existing is not None and existing.connection is not None:
            # MQTT-3.1.4-3: the session is taken over; the old connection is closed first.
            existing.connection.close(ReasonCode.SESSION_TAKEN_OVER, "session taken over")
            existing = self.sessions.get(client_id)
        if existing is not None and packet.clean_start:
            self._end_session(existing)  # MQTT-3.1.2-4
            existing = None
        if existing is None:
            session = Session(client_id, expiry, self.limits)
            self.sessions[client_id] = session
        else:
            session = existing
            self._cancel(session, "expiry_handle")
            # MQTT-3.1.3-9: a delayed will is not sent once the client is back.
            self._cancel(session, "will_handle")
            session.will = None
        session.expiry_interval = expiry
        session.connection = conn
        session.client = conn.client
        session.read_allowed.clear()
        conn.session = session
        self.connections.add(conn)

        will = packet.will
        if will is not None:
            will_props = will.properties
            session.will_delay = will_props.will_delay_interval or 0
            # The will's Message Expiry Interval runs from its publication, not from now
            # (MQTT 5.0 3.1.3.2.4): kept aside and applied in _publish_will.
            session.will_expiry = will_props.message_expiry_interval
            if (will_props.will_delay_interval is not None
                    or will_props.message_expiry_interval is not None):
                will_props = replace(will_props, will_delay_interval=None,
                                     message_expiry_interval=None)
            session.will = Message.from_publish(will.topic, will.payload, will.qos, will.retain,
                                                will_props, now, client_id)

        session.disconnected_at = None
        store = self.store
        if expiry and store.persistent:
            if session.store is None:
                session.store = store
                store.session_adopted(session)
            else:
                store.session_saved(session)  # so the CONNACK waits for it, as SUBACKs do
        elif session.store is not None:
            session.store.session_forgotten(session)  # MQTT 5: expiry 0 from now on
            session.store = None

        keep_alive = packet.keep_alive
        ack_props = NO_PROPERTIES
        if v5:
            server_keep_alive = None
            if keep_alive > config.max_keepalive:
                keep_alive = server_keep_alive = config.max_keepalive  # MQTT-3.2.2-21
            conn.max_out_packet = props.maximum_packet_size or 0
            if props.topic_alias_maximum and config.topic_alias_out:
                conn.max_out_alias = props.topic_alias_maximum
                conn.out_aliases = {}
            receive_maximum = props.receive_maximum or _MAX_RECEIVE
            ack_props = Properties(
                assigned_client_identifier=None if packet.client_id else client_id,
                server_keep_alive=server_keep_alive,
                # Our own Receive Maximum: as many inbound QoS 2 messages unreleased at once
                # as we send out (Mosquitto announces the same).
                receive_maximum=config.max_inflight_messages or None,
                topic_alias_maximum=config.max_topic_alias or None,
                maximum_qos=config.max_qos if config.max_qos < 2 else None,
                retain_available=None if config.retain_available else 0,
                maximum_packet_size=config.max_packet_size or None,
                wildcard_subscription_available=(
                    None if config.wildcard_subscription_available else 0),
                subscription_identifier_available=(
                    None if config.subscription_identifiers_available else 0),
                shared_subscription_available=(
                    None if config.shared_subscription_available else 0),
                # MQTT-3.1.2-28: only to a client that asked for it.
                response_information=(config.response_information
                                      if props.request_response_information else None),
                authentication_method=conn.auth_method,  # MQTT 5.0 4.12
                authentication_data=conn.auth_reply,
            )
        else:
            receive_maximum = _MAX_RECEIVE
        conn.keep_alive = keep_alive
        conn.send_window = min(receive_maximum, config.max_inflight_messages or _MAX_RECEIVE)
        session_present = existing is not None  # MQTT-3.2.2-2, -3
        if v5:
            conn.send(ConnAck(session_present, 0, ack_props))
        else:
            conn.write(_V3_CONNACK_ACCEPTED[session_present])
        log.info("connected: client %s from %s, MQTT %s, %s, keep-alive %ds",
                 client_id, conn.peer, VERSION_NAMES[packet.protocol_version],
                 "session resumed" if session_present else "new session", keep_alive)
        if session_present:
            session.resume(now)  # a new session has nothing to resend

    def disconnected(self, conn: Connection, publish_will: bool) -> None:
        self.connections.discard(conn)
        session = conn.session
        if session is None or session.connection is not conn:
            return
        session.connection = None
        session.disconnected_at = self.clock()
        if session.will is not None:
            if not publish_will:
                session.will = None
            elif session.will_delay == 0 or session.expiry_interval == 0:
                self._publish_will(session)
            elif session.will_delay < session.expiry_interval:
                session.will_handle = self.scheduler.call_later(session.will_delay,
                                                                self._will_due, session)
            # else: the session ends first, and _end_session publishes the will then.
        if session.expiry_interval == 0:
            self._end_session(session)
            return
        if session.expiry_interval != NEVER_EXPIRES:
            session.expiry_handle = self.scheduler.call_later(session.expiry_interval,
                                                              self._session_expired, session)
        if session.store is not None:
            session.store.session_saved(session)

    def _will_due(self, session: Session) -> None:
        session.will_handle = None
        self._publish_will(session)
        if session.store is not None:
            session.store.session_saved(session)

    def _publish_will(self, session: Session) -> None:
        will, session.will = session.will, None
        if will is None:
            return
        if session.will_expiry is not None:
            will.expiry_at = self.clock() + session.will_expiry
        self.publish(will)

    def _session_expired(self, session: Session) -> None:
        session.expiry_handle = None
        if session.connection is None:
            log.info("expired: session of client %s", session.client_id)
            self._end_session(session)

    def _end_session(self, session: Session) -> None:
        self._cancel(session, "expiry_handle")
        self._cancel(session, "will_handle")
        self._publish_will(session)  # MQTT-3.1.2-8: the session ends before the will delay
        if session.store is not None:
            session.store.session_forgotten(session)
            session.store = None
        for sub in session.subscriptions.values():
            self.router.remove(sub)
        session.subscriptions.clear()
        session.queue = None
        session.inflight.clear()
        if self.sessions.get(session.client_id) is session:
            del self.sessions[session.client_id]

    @staticmethod
    def _cancel(session: Session, attribute: str) -> None:
        handle = getattr(session, attribute)
        if handle is not None:
            handle.cancel()
            setattr(session, attribute, None)

    def _assign_client_id(self) -> str:
        while True:
            client_id = "auto-" + os.urandom(8).hex()
            if client_id not in self.sessions:
                return client_id

    # -- publishing -------------------------------------------------------------------------

    def publish_from_client(self, conn: Connection, topic: str, packet: Publish) -> int:
        """Route a client's PUBLISH; the reason code for its PUBACK or PUBREC."""
        limit = self.config.message_size_limit
        if limit and len(packet.payload) > limit:
            log.warning("dropped: %d-byte message from client %s on %r is above "
                        "message_size_limit", len(packet.payload), conn.client_id, topic)
            return ReasonCode.QUOTA_EXCEEDED
        if (self.auth.authorizers and conn.client is not None
                and not self.auth.authorize(conn.client, Action.PUBLISH, topic)):
            # v5 publishers are told (0x87); v3 ones cannot be, and the message is dropped.
            log.debug("denied: client %s may not publish to %r", conn.client_id, topic)
            return ReasonCode.NOT_AUTHORIZED
        message = Message.from_publish(topic, packet.payload, packet.qos, packet.retain,
                                       packet.properties, self.clock(), conn.client_id)
        if self.publish(message):
            return ReasonCode.SUCCESS
        return ReasonCode.NO_MATCHING_SUBSCRIBERS

    def publish(self, message: Message) -> int:
        """Deliver ``message`` to every matching subscription; the number of sessions."""
        if message.retain:
            self.retained.set(message)
            self.store.retained_changed(message.topic, message)
        found, groups = self.router.match(message.topic)
        sender = message.sender
        checked = bool(self.auth.authorizers)
        count = 0
        if len(found) == 1:
            for client_id, sub in found[0].items():
                if sub.no_local and client_id == sender:
                    continue  # MQTT-3.8.3-3 (5.0)
                if checked and not self.may_receive(sub.session, message.topic):
                    continue
                self._deliver_one(message, sub)
                count += 1
        elif found:
            # Overlapping subscriptions of one client give one delivery at the highest QoS,
            # with every subscription identifier (MQTT-3.3.4-2, MQTT-3.3.4-3, MQTT-3.3.4-4).
            by_client: dict[str, list[Subscription]] = {}
            for subs in found:
                for client_id, sub in subs.items():
                    if sub.no_local and client_id == sender:
                        continue
                    if checked and not self.may_receive(sub.session, message.topic):
                        continue
                    same = by_client.get(client_id)
                    if same is None:
                        by_client[client_id] = [sub]
                    else:
                        same.append(sub)
            for same in by_client.values():
                if len(same) == 1:
                    self._deliver_one(message, same[0])
                    continue
                qos = min(message.qos, max(sub.qos for sub in same))
                retain = message.retain and any(sub.retain_as_published for sub in same)
                ids = tuple(sub.identifier for sub in same if sub.identifier)
                same[0].session.deliver(message, qos, retain, ids)
            count += len(by_client)
        for group in groups:
            picked = group.pick()
            if picked is not None and not (checked and not self.may_receive(picked.session,
                                                                            message.topic)):
                self._deliver_one(message, picked)
                count += 1
        return count

    def may_receive(self, session: Session, topic: str) -> bool:
        """The read check of every delivery, remembered per session and topic."""
        allowed = session.read_allowed.get(topic)
        if allowed is None:
            client = session.client
            allowed = client is None or self.auth.authorize(client, Action.RECEIVE, topic)
            if len(session.read_allowed) > 4096:
                session.read_allowed.clear()
            session.read_allowed[topic] = allowed
        return allowed

    def reload_auth(self) -> None:
        """SIGHUP: reload the plugins' files; cached access answers are forgotten."""
        self.auth.reload()
        for session in self.sessions.values():
            session.read_allowed.clear()

    @staticmethod
    def _deliver_one(message: Message, sub: Subscription) -> None:
        # MQTT-3.3.1-12, -13: RETAIN is kept only for Retain As Published subscriptions
        # (3.1.1: always cleared, MQTT-3.3.1-9).
        sub.session.deliver(message, min(message.qos, sub.qos),
                            message.retain and sub.retain_as_published,
                            (sub.identifier,) if sub.identifier else ())

    # -- subscriptions ----------------------------------------------------------------------

    def subscribe(self, conn: Connection, packet: Subscribe
                  ) -> tuple[list[int], list[tuple[Message, int, tuple[int, ...]]]]:
        """Add the subscriptions; the SUBACK codes and the retained messages to send."""
        session = conn.session
        assert session is not None
        v5 = conn.version == MQTT_5
        invalid = ReasonCode.TOPIC_FILTER_INVALID if v5 else 0x80
        ids = packet.properties.subscription_identifiers
        identifier = ids[0] if ids else None
        config = self.config
        if identifier is not None and not config.subscription_identifiers_available:
            raise MQTTError(ReasonCode.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED,
                            "subscription identifiers are not available")  # MQTT 5.0 3.2.2.3.12
        now = self.clock()
        codes: list[int] = []
        retained: list[tuple[Message, int, tuple[int, ...]]] = []
        for request in packet.subscriptions:
            topic_filter = request.topic_filter
            try:
                shared = parse_shared(topic_filter)
            except ValueError:
                codes.append(invalid)
                continue
            if shared is None:
                group, match_filter = None, topic_filter
                if not is_valid_topic_filter(topic_filter):
                    codes.append(invalid)
                    continue
            else:
                group, match_filter = shared
                if not config.shared_subscription_available:
                    if v5:  # MQTT 5.0 3.2.2.3.13
                        raise MQTTError(ReasonCode.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED,
                                        "shared subscriptions are not available")
                    codes.append(0x80)
                    continue
                if request.no_local:
                    raise protocol_error("No Local on a shared subscription")  # MQTT-3.8.3-4
            if not config.wildcard_subscription_available and (
                    "+" in match_filter or "#" in match_filter):
                if v5:  # MQTT 5.0 3.2.2.3.11
                    raise MQTTError(ReasonCode.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
                                    "wildcard subscriptions are not available")
                codes.append(0x80)
                continue
            if (self.auth.authorizers and conn.client is not None
                    and not self.auth.authorize(conn.client, Action.SUBSCRIBE, match_filter)):
                codes.append(ReasonCode.NOT_AUTHORIZED if v5 else 0x80)
                continue
            qos = min(request.qos, self.config.max_qos)
            sub = Subscription(session, topic_filter, qos, no_local=request.no_local,
                               retain_as_published=request.retain_as_published,
                               retain_handling=request.retain_handling,
                               identifier=identifier, group=group, match_filter=match_filter)
            existed = self.router.add(sub)
            session.subscriptions[topic_filter] = sub
            if session.store is not None:
                session.store.subscription_saved(session, sub)
            codes.append(qos)
            # MQTT-3.3.1-9..11 (5.0); 3.1.1 always sends them (MQTT-3.8.4-3). Shared
            # subscriptions get no retained messages (MQTT 5.0 4.8.2).
            handling = request.retain_handling
            if group is None and (handling == 0 or (handling == 1 and not existed)):
                sub_ids = (identifier,) if identifier else ()
                for message in self.retained_matching(match_filter, now):
                    if self.auth.authorizers and not self.may_receive(session, message.topic):
                        continue
                    retained.append((message, min(message.qos, qos), sub_ids))
        return codes, retained

    def retained_matching(self, topic_filter: str, now: float) -> list[Message]:
        found = []
        expired = []
        for message in self.retained.match(topic_filter):
            if message.expired(now):
                expired.append(message)
            else:
                found.append(message)
        for message in expired:
            if self.retained.get(message.topic) is message:
                self.retained.set(Message(message.topic, b""))
                self.store.retained_changed(message.topic, None)
        return found

    def unsubscribe(self, conn: Connection, packet: Unsubscribe) -> list[int]:
        session = conn.session
        assert session is not None
        codes: list[int] = []
        for topic_filter in packet.topic_filters:
            sub = session.subscriptions.pop(topic_filter, None)
            if sub is not None:
                self.router.remove(sub)
                if session.store is not None:
                    session.store.subscription_removed(session, topic_filter)
                codes.append(ReasonCode.SUCCESS)
            elif _filter_ok(topic_filter):
                codes.append(ReasonCode.NO_SUBSCRIPTION_EXISTED)
            else:
                codes.append(ReasonCode.TOPIC_FILTER_INVALID)
        return codes

    # -- restart ----------------------------------------------------------------------------

    def restore(self, snapshot: Snapshot, wall_now: float) -> None:
        """Rebuild the persistent sessions, their queues and in-flight state, and the retained
        messages, from what the store kept; then let the time spent stopped take effect."""
        now = self.clock()
        offset = now - wall_now  # wall clock -> the broker's clock

        def rebuild(stored: StoredMessage, sender: str | None = None) -> Message:
            expiry_at = None if stored.expires_at is None else stored.expires_at + offset
            return Message(stored.topic, stored.payload, stored.qos, stored.retain,
                           stored.properties, expiry_at, sender)

        messages: dict[int, Message] = {}
        for message_id, stored in snapshot.messages.items():
            message = messages[message_id] = rebuild(stored)
            message.store_id = message_id
            message.stored = True
        restored: list[tuple[Session, float, bool]] = []
        for record in snapshot.sessions:
            session = Session(record.client_id, record.expiry_interval, self.limits)
            session.store = self.store
            session.client = ClientInfo(record.client_id, record.username, None, "",
                                        record.protocol_version, record.cert_subject)
            # A session that was connected when the broker stopped is disconnected from now.
            disconnected = record.disconnected_at
            was_connected = disconnected is None
            offline = 0.0 if disconnected is None else max(0.0, wall_now - disconnected)
            session.disconnected_at = now - offline
            if record.will is not None:
                session.will = rebuild(record.will.message, record.client_id)
                session.will_delay = record.will.delay
                session.will_expiry = record.will.expiry
            self.sessions[record.client_id] = session
            restored.append((session, offline, was_connected))
        for sub_record in snapshot.subscriptions:
            session = self.sessions[sub_record.client_id]
            topic_filter = sub_record.topic_filter
            shared = parse_shared(topic_filter)
            group, match_filter = shared if shared is not None else (None, topic_filter)
            sub = Subscription(session, topic_filter, sub_record.qos,
                               no_local=sub_record.no_local,
                               retain_as_published=sub_record.retain_as_published,
                               retain_handling=sub_record.retain_handling,
                               identifier=sub_record.identifier, group=group,
                               match_filter=match_filter)
            self.router.add(sub)
            session.subscriptions[topic_filter] = sub
        for delivery in snapshot.deliveries:
            session = self.sessions[delivery.client_id]
            message = messages[delivery.message_id]
            out = Outgoing(message, delivery.qos, delivery.retain, delivery.sub_ids)
            out.seq = delivery.seq
            out.batch = WRITTEN_BEFORE
            message.store_refs += 1
            if delivery.packet_id:
                out.packet_id = delivery.packet_id
                out.state = delivery.state
                session.inflight[delivery.packet_id] = out
            else:
                if session.queue is None:
                    session.queue = deque()
                session.queue.append(out)
                session.queued_bytes += len(message.payload)
        for client_id, packet_id in snapshot.awaiting_release:
            session = self.sessions[client_id]
            if session.awaiting_rel is None:
                session.awaiting_rel = set()
            session.awaiting_rel.add(packet_id)
        for stored in snapshot.retained:
            self.retained.set(rebuild(stored))
        if snapshot.sessions or snapshot.retained:
            log.info("restored %d sessions (%d queued or in-flight messages) and %d retained "
                     "messages", len(snapshot.sessions), len(snapshot.deliveries),
                     len(snapshot.retained))
        for session, offline, was_connected in restored:
            self._resume_offline(session, offline, was_connected)

    def _resume_offline(self, session: Session, offline: float, was_connected: bool) -> None:
        """Timers of a restored session, ``offline`` seconds after its client went away."""
        if session.expiry_interval != NEVER_EXPIRES:
            left = session.expiry_interval - offline
            if left <= 0:
                log.info("expired: session of client %s (while the broker was stopped)",
                         session.client_id)
                self._end_session(session)
                return
            session.expiry_handle = self.scheduler.call_later(left, self._session_expired,
                                                              session)
        if session.will is not None:
            due = session.will_delay - offline
            if due <= 0:
                # The client's connection ended when the broker stopped: its will is due.
                self._publish_will(session)
                was_connected = True
            elif session.will_delay < session.expiry_interval:
                session.will_handle = self.scheduler.call_later(due, self._will_due, session)
        if was_connected:
            self.store.session_saved(session)

    # -- shutdown ---------------------------------------------------------------------------

    def close_all(self, reason: ReasonCode, why: str) -> None:
        for conn in list(self.connections):
            conn.close(reason, why)


def _filter_ok(topic_filter: str) -> bool:
    try:
        shared = parse_shared(topic_filter)
    except ValueError:
        return False
    return shared is not None or is_valid_topic_filter(topic_filter)
