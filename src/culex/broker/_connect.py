"""CONNECT handling: validation, who the client is, the authentication dance, and the
negotiated result (limits, CONNACK) that the connection applies to itself.

Nothing here writes a connection's fields: the checks return a refusal, authentication
answers through the connection's ``authenticated`` (now, or when a plugin has decided), and
``negotiate`` returns an ``Accepted`` value.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from ..auth import Action, AuthChain, ClientInfo
from ..protocol import (
    MQTT_5,
    ConnAck,
    Connect,
    Properties,
    ReasonCode,
    is_utf8,
    is_valid_topic_name,
)
from ._message import Message
from ._session import NEVER_EXPIRES
from ._throttle import Throttle, address_of

if TYPE_CHECKING:
    from ..config import Config, ListenerConfig
    from ..observability import Counters
    from ._broker import Scheduler
    from ._session import Session

log = logging.getLogger("culex")

# Receive Maximum of a client that sets none (MQTT 5.0 3.1.2.11.3), and of every 3.x client.
MAX_RECEIVE = 65535
# The two CONNACKs that accept an MQTT 3.x client, by Session Present.
_V3_CONNACK_ACCEPTED = {present: ConnAck(present, 0).encode(4) for present in (False, True)}
_REFUSALS: dict[int, str] = {
    ReasonCode.BAD_USER_NAME_OR_PASSWORD: "bad user name or password",
    ReasonCode.NOT_AUTHORIZED: "not authorized",
    ReasonCode.SERVER_UNAVAILABLE: "authentication failed inside a plugin",
}

Refusal = tuple[int, str]  # CONNACK reason code, and why (for the log and a v5 Reason String)


class Accepted(NamedTuple):
    """What an accepted CONNECT negotiated: the connection applies it to itself."""

    session: Session
    session_present: bool  # MQTT-3.2.2-2, -3
    expiry: int  # Session Expiry Interval in force at CONNECT
    keep_alive: int  # seconds; the server's own for a v5 client asking too much
    send_window: int  # QoS 1/2 messages in flight towards the client at once
    max_out_packet: int  # the client's Maximum Packet Size (0: no limit)
    max_out_alias: int  # topic aliases the broker may use towards the client
    connack: bytes


class Verdict(Protocol):
    """Where the authentication dance answers: the connection being accepted."""

    def authenticated(self, client: ClientInfo, refusal: Refusal | None) -> None: ...

    def start_exchange(self, method: Any, packet: Connect) -> None: ...


def check_connect(config: Config, methods: dict[str, Any], packet: Connect) -> Refusal | None:
    """The reason to refuse this CONNECT before anyone is asked who the client is."""
    version = packet.protocol_version
    if not packet.client_id and (version == 3 or (version == 4 and not packet.clean_start)):
        # MQTT-3.1.3-8 (3.1.1): an empty id only with a clean session; 3.1 needs one.
        return ReasonCode.CLIENT_IDENTIFIER_NOT_VALID, "empty client id"
    method = packet.properties.authentication_method
    if version == MQTT_5 and method is not None and method not in methods:
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


def identify(listener: ListenerConfig | None, packet: Connect, client_id: str, peer: str,
             cert_subject: str | None, cert_cn: str | None) -> tuple[ClientInfo, bool]:
    """Who the client says it is, and whether its TLS certificate vouches for it."""
    username = packet.username
    by_certificate = False
    if listener is not None and listener.use_subject_as_username:
        username, by_certificate = cert_subject, True
    elif listener is not None and listener.use_identity_as_username:
        username, by_certificate = cert_cn, True
    return ClientInfo(client_id, username, packet.password, peer, packet.protocol_version,
                      cert_subject), by_certificate


class Handshake:
    """The authentication dance: password check (plugins may answer later), enhanced
    authentication (MQTT 5.0 4.12), and the will topic's permission."""

    def __init__(self, config: Config, auth: AuthChain, scheduler: Scheduler,
                 counters: Counters) -> None:
        self._config = config
        self._auth = auth
        self._scheduler = scheduler
        self._throttle = Throttle(scheduler, config.max_auth_failure_delay, counters)

    def authenticate(self, conn: Verdict, packet: Connect, client: ClientInfo,
                     by_certificate: bool, listener: ListenerConfig | None) -> None:
        """Decide who the client is; answer through ``conn.authenticated``, now or later
        (later too when its address has failed logins recently)."""
        delay = self._throttle.wait(address_of(client.peer))
        if delay:
            self._scheduler.call_later(delay, self._authenticate, conn, packet, client,
                                       by_certificate, listener)
        else:
            self._authenticate(conn, packet, client, by_certificate, listener)

    def delay(self, peer: str) -> float:
        """Seconds a login attempt from ``peer`` starting now waits for its turn."""
        return self._throttle.wait(address_of(peer))

    def failed(self, peer: str) -> None:
        """A login from ``peer`` failed: its address is slowed down."""
        self._throttle.failed(address_of(peer))

    def _authenticate(self, conn: Verdict, packet: Connect, client: ClientInfo,
                      by_certificate: bool, listener: ListenerConfig | None) -> None:
        method = packet.properties.authentication_method
        if method is not None:
            # MQTT 5.0 4.12: the method decides who the client is; ACLs apply as usual.
            conn.start_exchange(self._auth.methods[method], packet)
            return
        if by_certificate:
            if client.username is None:
                conn.authenticated(client, (ReasonCode.NOT_AUTHORIZED,
                                            "no identity in the client certificate"))
            else:
                self.authorize_will(conn, packet, client, None)  # the TLS layer vouched
            return
        anonymous_ok = self._config.anonymous_allowed(listener)
        if not self._auth.authenticators:
            self.authorize_will(conn, packet, client,
                                None if anonymous_ok else ReasonCode.NOT_AUTHORIZED)
            return
        task = self._scheduler.create_task(self._auth.authenticate(client, anonymous_ok))

        def done(task: Any) -> None:
            try:
                reason = task.result()
            except Exception:
                log.exception("an authentication plugin failed for client %s",
                              client.client_id)
                reason = ReasonCode.SERVER_UNAVAILABLE
            self.authorize_will(conn, packet, client, reason)

        task.add_done_callback(done)

    def authorize_will(self, conn: Verdict, packet: Connect, client: ClientInfo,
                       reason: int | None) -> None:
        """The client is who it says (``reason`` None) or is refused; its will topic must
        be one it may publish to."""
        if reason is not None:
            why = _REFUSALS.get(reason, "refused")
            if reason == ReasonCode.NOT_AUTHORIZED and client.username is None:
                why = "anonymous clients are not allowed on this listener"
            conn.authenticated(client, (reason, why))
            return
        will = packet.will
        if will is not None and (is_sys_topic(will.topic)
                                 or not self._auth.authorize(client, Action.PUBLISH,
                                                             will.topic)):
            conn.authenticated(client, (ReasonCode.NOT_AUTHORIZED,
                                        f"will topic {will.topic!r} not allowed"))
            return
        conn.authenticated(client, None)


BRIDGE_STATES = "$SYS/broker/connection/"


def is_sys_topic(topic: str) -> bool:
    """Whether ``topic`` is in the broker's own ``$SYS`` tree, which clients cannot write.
    Bridges' state topics are the exception (``$SYS/broker/connection/<id>/state``: a bridge
    publishes 1 there and leaves a will of 0, as Mosquitto's do); the ACL still applies."""
    return (topic.startswith("$SYS/") and not topic.startswith(BRIDGE_STATES)) \
        or topic == "$SYS"


def session_expiry(config: Config, packet: Connect) -> int:
    """The Session Expiry Interval a CONNECT asks for; 3.x persistent sessions get
    persistent_client_expiration, or never expire (MQTT 3.1.1 has no expiry)."""
    if packet.protocol_version == MQTT_5:
        return packet.properties.session_expiry_interval or 0
    if packet.clean_start:
        return 0
    if config.persistent_client_expiration is not None:
        return config.persistent_client_expiration
    return NEVER_EXPIRES


def will_of(packet: Connect, now: float, client_id: str) -> tuple[Message, int, int | None] | None:
    """The CONNECT's will as a message, its delay and its expiry interval. The expiry runs
    from the will's publication, not from now (MQTT 5.0 3.1.3.2.4): kept apart until then."""
    will = packet.will
    if will is None:
        return None
    props = will.properties
    delay, expiry = props.will_delay_interval or 0, props.message_expiry_interval
    if props.will_delay_interval is not None or expiry is not None:
        props = replace(props, will_delay_interval=None, message_expiry_interval=None)
    message = Message.from_publish(will.topic, will.payload, will.qos, will.retain, props, now,
                                   client_id)
    return message, delay, expiry


def negotiate(config: Config, packet: Connect, session: Session, session_present: bool,
              expiry: int, ack_props: Properties | None) -> Accepted:
    """The limits both sides keep to from now on, and the CONNACK that says so (with
    ``ack_props``, from connack_properties, for an MQTT 5 client)."""
    if ack_props is None:
        return Accepted(session, session_present, expiry, packet.keep_alive,
                        min(MAX_RECEIVE, config.max_inflight_messages or MAX_RECEIVE), 0, 0,
                        # MQTT 3.1 has no Session Present: the byte is reserved, 0.
                        _V3_CONNACK_ACCEPTED[session_present and packet.protocol_version == 4])
    props = packet.properties
    max_alias = props.topic_alias_maximum if config.topic_alias_out else 0
    receive_maximum = props.receive_maximum or MAX_RECEIVE
    return Accepted(session, session_present, expiry,
                    min(packet.keep_alive, config.max_keepalive),  # MQTT-3.2.2-21
                    min(receive_maximum, config.max_inflight_messages or MAX_RECEIVE),
                    props.maximum_packet_size or 0, max_alias or 0,
                    ConnAck(session_present, 0, ack_props).encode(MQTT_5))


def connack_properties(config: Config, packet: Connect, client_id: str,
                       auth_method: str | None, auth_reply: bytes | None) -> Properties | None:
    """What an accepting CONNACK tells an MQTT 5 client of the server (MQTT 5.0 3.2.2.3);
    None for 3.x, whose CONNACK has no properties."""
    if packet.protocol_version != MQTT_5:
        return None
    props = packet.properties
    server_keep_alive = None
    if packet.keep_alive > config.max_keepalive:
        server_keep_alive = config.max_keepalive  # MQTT-3.2.2-21
    return Properties(
        assigned_client_identifier=None if packet.client_id else client_id,
        server_keep_alive=server_keep_alive,
        # Our own Receive Maximum: as many inbound QoS 2 messages unreleased at once as we
        # send out (Mosquitto announces the same).
        receive_maximum=config.max_inflight_messages or None,
        topic_alias_maximum=config.max_topic_alias or None,
        maximum_qos=config.max_qos if config.max_qos < 2 else None,
        retain_available=None if config.retain_available else 0,
        maximum_packet_size=config.max_packet_size or None,
        wildcard_subscription_available=None if config.wildcard_subscription_available else 0,
        subscription_identifier_available=(
            None if config.subscription_identifiers_available else 0),
        shared_subscription_available=None if config.shared_subscription_available else 0,
        # MQTT-3.1.2-28: only to a client that asked for it.
        response_information=(config.response_information
                              if props.request_response_information else None),
        authentication_method=auth_method,  # MQTT 5.0 4.12
        authentication_data=auth_reply,
    )


def connack_too_large(packet: Connect, ack_props: Properties | None) -> bool:
    """Whether the accepting CONNACK would exceed the client's Maximum Packet Size: then
    nothing may be sent to it at all (MQTT-3.1.2-24), and it is not accepted."""
    limit = packet.properties.maximum_packet_size
    if ack_props is None or not limit:
        return False
    return len(ConnAck(False, 0, ack_props).encode(MQTT_5)) > limit
