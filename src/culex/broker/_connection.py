"""One client connection: the protocol state between a socket and the broker.

Still sans-IO: bytes come in through ``data_received``, bytes go out through a ``Sink`` (the
transport layer coalesces them), and time comes from the broker's scheduler. One handler per
packet kind; every protocol violation, wherever it is found, becomes an ``MQTTError`` and is
turned into a DISCONNECT (v5) or a closed connection (v3) in one place, ``_violation``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from ..protocol import (
    MQTT_5,
    NO_PROPERTIES,
    V5_TO_V3_CONNACK,
    Auth,
    ConnAck,
    Connect,
    Decoder,
    Disconnect,
    MQTTError,
    Packet,
    PingReq,
    PingResp,
    Properties,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    ReasonCode,
    SubAck,
    Subscribe,
    UnsubAck,
    Unsubscribe,
    UnsupportedProtocolVersion,
    is_utf8,
    is_valid_topic_name,
    protocol_error,
)
from ._message import Message

if TYPE_CHECKING:
    from ..auth import ClientInfo
    from ..config import ListenerConfig
    from ._broker import Broker
    from ._session import Session

log = logging.getLogger("culex")

NEW, AUTHENTICATING, CONNECTED, CLOSED = range(4)
# Largest CONNECT read from a peer nobody has authenticated yet. Every field of a CONNECT is at
# most 65,535 bytes and a legitimate one stays far below this; without the cap a stranger could
# make the broker buffer up to max_packet_size (256 MB by default) before saying who it is.
MAX_CONNECT_SIZE = 1 << 20
# Packets a client may send during its enhanced authentication, kept for after the CONNACK.
MAX_DEFERRED = 1000
# Up to this size a payload is joined to its header (a cheap copy) rather than written apart.
SMALL_PAYLOAD = 1024
VERSION_NAMES = {3: "3.1", 4: "3.1.1", 5: "5.0"}


class Sink(Protocol):
    """Where a connection's bytes go: the transport layer, or a list in tests."""

    def write(self, data: bytes | memoryview) -> None: ...

    def flush(self) -> None:
        """Send what was written now rather than at the end of the loop iteration."""

    def close(self) -> None: ...


class Connection:
    __slots__ = (
        "_clean_exit",
        "_connect",
        "_deferred",
        "_exchange",
        "_held",
        "_hold_until",
        "_in_process",
        "_keepalive_limit",
        "_last_rx",
        "_method",
        "_qos2_in",
        "aliases",
        "auth_method",
        "auth_reply",
        "broker",
        "cert_cn",
        "cert_subject",
        "client",
        "client_id",
        "connect_expiry",
        "decoder",
        "due_key",
        "keep_alive",
        "listener",
        "max_out_alias",
        "max_out_packet",
        "out_aliases",
        "paused",
        "peer",
        "send_window",
        "session",
        "sink",
        "state",
        "version",
    )

    def __init__(self, broker: Broker, sink: Sink, peer: str,
                 listener: ListenerConfig | None = None, cert_subject: str | None = None,
                 cert_cn: str | None = None) -> None:
        self.broker = broker
        self.sink = sink
        self.peer = peer
        self.listener = listener
        self.cert_subject = cert_subject  # of a verified TLS client certificate
        self.cert_cn = cert_cn
        self.client: ClientInfo | None = None  # who this is, once authenticated
        self.decoder = Decoder(min(broker.config.packet_size_limit, MAX_CONNECT_SIZE))
        self.state = NEW
        self.version = 0
        self.client_id = ""
        self.session: Session | None = None
        self.keep_alive = 0
        self.send_window = 0
        self.max_out_packet = 0  # the client's Maximum Packet Size (v5); 0 = no limit
        # Topic aliases towards an MQTT 5 client that accepts them (its Topic Alias Maximum):
        # the first topics it is sent get one each, for the life of the connection.
        self.max_out_alias = 0
        self.out_aliases: dict[str, int] | None = None
        self.aliases: dict[int, str] = {}  # inbound topic aliases (MQTT-3.3.2-7: per connection)
        self.paused = False  # the transport's buffer is full: queue instead of writing
        # Writes waiting for a store commit (see hold), each with the commit it waits for.
        self._hold_until = 0
        self._held: list[tuple[int, bytes | memoryview]] | None = None
        # Inbound QoS 2 packet ids of this connection awaiting PUBREL: what our Receive
        # Maximum bounds for an MQTT 5 client (the quota starts afresh with each connection,
        # MQTT 5.0 4.9). Made on first use.
        self._qos2_in: set[int] | None = None
        # MQTT 5 enhanced authentication (4.12): the method named at CONNECT, the exchange in
        # progress, the CONNECT it is for, packets that wait for its end, the method's last
        # data (sent in CONNACK).
        self.auth_method: str | None = None
        self.auth_reply: bytes | None = None
        self._method: Any = None
        self._exchange: Any = None
        self._connect: Connect | None = None
        self._deferred: list[Packet] | None = None
        self._clean_exit = False
        self._in_process = False
        self.connect_expiry = 0
        self._keepalive_limit = 0.0
        self._last_rx = broker.clock()
        # One deadline per connection: the connect timeout first, then the keep-alive check.
        self.due_key = 0
        broker.deadlines.arm(self, self._last_rx + broker.config.connect_timeout)

    # -- input ------------------------------------------------------------------------------

    def data_received(self, data: bytes | bytearray | memoryview) -> None:
        if self.state == CLOSED:
            return  # MQTT-3.1.4-6: nothing after a refused CONNECT or a DISCONNECT is read
        self._last_rx = self.broker.clock()
        decoder = self.decoder
        if self.state == NEW and not decoder.buffered and data[:1] != b"\x10":
            # MQTT-3.1.0-1: not a CONNECT, so not worth waiting for the rest of it.
            self._refuse_quietly("first packet is not CONNECT")
            return
        decoder.feed(data)
        if self.state == AUTHENTICATING:
            # Packets wait, in order, until the client is accepted (MQTT-3.1.4-6); a client
            # that keeps sending meanwhile is not given unbounded memory.
            if decoder.buffered > MAX_CONNECT_SIZE:
                self._refuse_quietly("too much data before CONNACK")
            elif self._exchange is not None:
                self._process_exchange()
            return
        self._process()

    def _process_exchange(self) -> None:
        """During an enhanced authentication at CONNECT, AUTH packets are answered and all
        else waits for the CONNACK (MQTT 5.0 3.1.4: nothing but AUTH is processed before)."""
        deferred = self._deferred
        if deferred is None:
            deferred = self._deferred = []
        try:
            while self.state == AUTHENTICATING and self._exchange is not None:
                packet = self.decoder.next_packet()
                if packet is None:
                    break
                if type(packet) is Auth:
                    self._on_auth(packet)
                elif len(deferred) >= MAX_DEFERRED:
                    self._refuse_quietly("too many packets before CONNACK")
                else:
                    deferred.append(packet)
        except MQTTError as exc:
            self._refuse_connect(self._connect or Connect(""), exc.reason_code,
                                 f"protocol error: {exc}")

    def _process(self) -> None:
        decoder = self.decoder
        self._in_process = True
        try:
            deferred, self._deferred = self._deferred, None
            for waiting in deferred or ():
                if self.state == CONNECTED:
                    self._handle(waiting)
            while self.state == CONNECTED or self.state == NEW:
                packet = decoder.next_packet()
                if packet is None:
                    break
                self._handle(packet)
        except MQTTError as exc:
            self._violation(exc)
        finally:
            self._in_process = False

    def _handle(self, packet: Packet) -> None:
        kind = type(packet)
        if kind is Publish:
            self._on_publish(packet)  # type: ignore[arg-type]
            return
        if self.state == NEW:
            if kind is not Connect:
                raise protocol_error("first packet is not CONNECT")  # MQTT-3.1.0-1
            self._on_connect(packet)  # type: ignore[arg-type]
            return
        handler = _HANDLERS.get(kind)
        if handler is None:
            raise protocol_error(f"a client may not send {kind.__name__.upper()}")
        handler(self, packet)

    def connection_lost(self) -> None:
        """The transport is gone (peer closed, network error, or we closed it)."""
        self._finish("connection lost")

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.session is not None and self.state == CONNECTED:
            self.session.pump(self.broker.clock())

    # -- output -----------------------------------------------------------------------------

    def hold(self, batch: int) -> None:
        """From now on, writes wait until the store has committed ``batch`` (a durable store
        calls this when it records a change this client's next reply depends on)."""
        self._hold_until = batch
        if self._held is None:
            self._held = []

    def release(self, batch: int) -> None:
        """The store committed ``batch``: what waited for it goes out, in order."""
        held = self._held
        if held is None:
            return
        count = 0
        for waits_for, _ in held:
            if waits_for > batch:
                break
            count += 1
        if self.state != CLOSED and count:
            for _, data in held[:count]:
                self.sink.write(data)
            # Released from a store callback, not while reading this client: the write goes
            # out now instead of one loop iteration later.
            self.sink.flush()
        del held[:count]
        if self._hold_until <= batch:
            self._hold_until = 0
            self._held = None

    def waiting_for(self) -> int:
        """The first store batch a held write waits for (0: none is held)."""
        return self._held[0][0] if self._held else 0

    def write(self, data: bytes | memoryview) -> None:
        """Write encoded packets, after the writes that wait for the store, if any."""
        if self._hold_until:
            assert self._held is not None
            self._held.append((self._hold_until, data))
        else:
            self.sink.write(data)

    def send(self, packet: Packet) -> None:
        self.write(packet.encode(self.version))

    def send_publish(self, message: Message, qos: int, retain: bool, dup: bool, packet_id: int,
                     sub_ids: tuple[int, ...]) -> bool:
        """Write one PUBLISH; False if it is larger than the client accepts (not sent)."""
        now = self.broker.clock() if message.expiry_at is not None else 0.0
        out_aliases = self.out_aliases
        alias = 0
        if out_aliases is not None:
            alias = out_aliases.get(message.topic, 0)
            if alias:
                header = message.aliased_header(alias, True, qos, retain, dup, packet_id,
                                                sub_ids, now)
            elif len(out_aliases) < self.max_out_alias and len(message.topic) > 3:
                alias = len(out_aliases) + 1
                header = message.aliased_header(alias, False, qos, retain, dup, packet_id,
                                                sub_ids, now)
        if not alias:
            header = message.publish_header(self.version == MQTT_5, qos, retain, dup,
                                            packet_id, sub_ids, now)
        payload = message.payload
        if self.max_out_packet and len(header) + len(payload) > self.max_out_packet:
            return False  # MQTT-3.1.2-24, -25
        if alias and out_aliases is not None:
            # Only once the packet that teaches the client the alias is surely sent.
            out_aliases[message.topic] = alias
        write = self.write if self._hold_until else self.sink.write
        if len(payload) <= SMALL_PAYLOAD:
            write(header + payload)  # one buffer instead of two for the transport
        else:
            write(header)
            write(payload)  # large payloads are never copied
        return True

    def send_pubrel(self, packet_id: int) -> None:
        self.write(PubRel(packet_id).encode(self.version))

    # -- closing ----------------------------------------------------------------------------

    def close(self, reason: ReasonCode, why: str) -> None:
        """Server-initiated close: tell a v5 client why (MQTT 4.13), then hang up."""
        if self.state == CONNECTED and self.version == MQTT_5:
            self.send(_explained(lambda props: Disconnect(reason, props), why,
                                 self.max_out_packet))
        self.sink.close()
        self._finish(why)

    def _violation(self, exc: MQTTError) -> None:
        if self.state == NEW:
            if isinstance(exc, UnsupportedProtocolVersion):
                # MQTT-3.1.2-2 (3.1.1): CONNACK 0x01 in the 3.1.1 form, which all can read.
                self.sink.write(ConnAck(False, 1).encode(4))
            self._refuse_quietly(str(exc))
            return
        self.close(exc.reason_code, f"protocol error: {exc}")

    def _refuse_quietly(self, why: str) -> None:
        log.info("refused: connection from %s: %s", self.peer, why)
        self.state = CLOSED
        self.broker.deadlines.disarm(self)
        self.sink.close()

    def _finish(self, why: str) -> None:
        if self.state == CLOSED:
            return
        was_connected = self.state == CONNECTED
        self.state = CLOSED
        self.broker.deadlines.disarm(self)
        if was_connected:
            log.info("disconnected: client %s from %s: %s", self.client_id, self.peer, why)
            self.broker.disconnected(self, publish_will=not self._clean_exit)

    def deadline_passed(self, now: float) -> None:
        if self.state == NEW or self.state == AUTHENTICATING:
            self._refuse_quietly("no CONNECT in time")
        elif self.state == CONNECTED and self._keepalive_limit:
            # Re-armed from the time of the last packet, instead of being moved for every
            # packet.
            if now - self._last_rx >= self._keepalive_limit:
                self.close(ReasonCode.KEEP_ALIVE_TIMEOUT, "keep-alive timeout")  # MQTT-3.1.2-22
            else:
                self.broker.deadlines.arm(self, self._last_rx + self._keepalive_limit)

    # -- CONNECT ----------------------------------------------------------------------------

    def _on_connect(self, packet: Connect) -> None:
        self.version = packet.protocol_version
        refusal = self.broker.check_connect(self, packet)
        if refusal is not None:
            self._refuse_connect(packet, *refusal)
            return
        self.state = AUTHENTICATING
        # The broker calls authenticated() now, or later when a plugin has answered.
        self.broker.authenticate(self, packet)

    def authenticated(self, packet: Connect, refusal: tuple[int, str] | None) -> None:
        if self.state != AUTHENTICATING:
            return  # the client went away while it was being checked
        if refusal is not None:
            self._refuse_connect(packet, *refusal)
            return
        self.state = CONNECTED
        self.decoder.max_packet_size = self.broker.config.packet_size_limit
        self.broker.connect(self, packet)
        if self.keep_alive:
            self._keepalive_limit = self.keep_alive * 1.5
            # The CONNECT timeout, if it comes first, becomes the keep-alive check (which
            # re-arms itself), as most connections live longer than that timeout.
            self.broker.deadlines.arm_by(self, self._last_rx + self._keepalive_limit)
        else:
            self.broker.deadlines.disarm(self)
        if not self._in_process:
            self._process()  # what arrived while the plugins were deciding

    def _refuse_connect(self, packet: Connect, reason: int, why: str) -> None:
        if self.version == MQTT_5:
            limit = packet.properties.maximum_packet_size or 0
            self.send(_explained(lambda props: ConnAck(False, reason, props), why, limit))
        elif (code := V5_TO_V3_CONNACK.get(reason)) is not None:
            self.send(ConnAck(False, code))  # MQTT-3.2.2-6: session present 0
        user = f", user {packet.username!r}" if packet.username is not None else ""
        # An empty client id has been replaced by an assigned one by now, if it got that far.
        self._refuse_quietly(f"client {self.client_id or packet.client_id!r}{user}: {why}")

    # -- PUBLISH and its acknowledgements ----------------------------------------------------

    def _on_publish(self, packet: Publish) -> None:
        if self.state != CONNECTED:
            raise protocol_error("PUBLISH before CONNECT")  # MQTT-3.1.0-1
        topic = packet.topic
        props = packet.properties
        if props is not NO_PROPERTIES:
            if props.subscription_identifiers:
                raise protocol_error("PUBLISH from a client with a subscription identifier")
            response = props.response_topic
            if response is not None and not is_valid_topic_name(response):
                raise protocol_error(f"invalid response topic {response!r}")  # MQTT-3.3.2-14
            alias = props.topic_alias
            if alias is not None:
                if not 0 < alias <= self.broker.config.max_topic_alias:
                    raise MQTTError(ReasonCode.TOPIC_ALIAS_INVALID,
                                    f"topic alias {alias}")  # MQTT-3.2.2-17
                if topic:
                    self.aliases[alias] = topic
                else:
                    topic = self.aliases.get(alias, "")
                    if not topic:
                        raise protocol_error(f"unknown topic alias {alias}")
        if not topic:
            # MQTT 5.0 3.3.2.1: a Protocol Error without a Topic Alias; 3.x: MQTT-4.7.3-1.
            raise protocol_error("empty topic name")
        qos = packet.qos
        if props.payload_format_indicator == 1 and not is_utf8(packet.payload):
            # MQTT 5.0 3.3.2.3.2: refused with 0x99; at QoS 0 only a DISCONNECT can say so.
            if not qos:
                raise MQTTError(ReasonCode.PAYLOAD_FORMAT_INVALID, "payload is not UTF-8")
            ack = PubAck if qos == 1 else PubRec
            self.send(ack(packet.packet_id, ReasonCode.PAYLOAD_FORMAT_INVALID))
            return
        config = self.broker.config
        if qos > config.max_qos:
            raise MQTTError(ReasonCode.QOS_NOT_SUPPORTED, f"QoS {qos}")  # MQTT-3.2.2-11
        if packet.retain and not config.retain_available:
            raise MQTTError(ReasonCode.RETAIN_NOT_SUPPORTED, "retain")  # MQTT-3.2.2-14
        session = self.session
        assert session is not None
        if qos == 2 and session.awaits_release(packet.packet_id):
            # A re-sent PUBLISH whose PUBREL has not come yet: already delivered once
            # (MQTT-4.3.3-10 method B), so only the PUBREC is repeated.
            self.write(PubRec(packet.packet_id).encode(self.version))
            return
        if not qos:
            self.broker.publish_from_client(self, topic, packet)
            return
        received = None
        if qos == 2 and self.version == MQTT_5:  # our Receive Maximum: MQTT 5 only
            received = self._qos2_in
            if received is None:
                received = self._qos2_in = set()
            limit = config.max_inflight_messages
            if limit and len(received) >= limit:
                raise MQTTError(ReasonCode.RECEIVE_MAXIMUM_EXCEEDED,
                                f"more than {limit} QoS 2 messages unreleased")  # MQTT 5.0 3.3.4
        store = self.broker.store
        changes = store.changes
        reason = self.broker.publish_from_client(self, topic, packet)
        if store.changes != changes:
            # The message went to a persistent session or the retained store: the
            # acknowledgement waits until that is on disk.
            store.touch(self)
        if qos == 1:
            self.send(PubAck(packet.packet_id, reason if self.version == MQTT_5 else 0))
        elif qos == 2:
            if reason < 0x80:  # else the exchange ends here (MQTT 4.3.3)
                session.await_release(packet.packet_id)
                if received is not None:
                    received.add(packet.packet_id)
            self.send(PubRec(packet.packet_id, reason if self.version == MQTT_5 else 0))

    def _on_puback(self, packet: PubAck) -> None:
        assert self.session is not None
        self.session.on_puback(packet.packet_id, self.broker.clock())

    def _on_pubrec(self, packet: PubRec) -> None:
        assert self.session is not None
        if self.session.on_pubrec(packet.packet_id, packet.reason_code >= 0x80,
                                  self.broker.clock()):
            self.send_pubrel(packet.packet_id)
        elif packet.reason_code < 0x80:
            # Unknown id: answer anyway so the client can finish (v5 says it was not found).
            code = ReasonCode.PACKET_IDENTIFIER_NOT_FOUND if self.version == MQTT_5 else 0
            self.send(PubRel(packet.packet_id, code))

    def _on_pubrel(self, packet: PubRel) -> None:
        assert self.session is not None
        if self._qos2_in is not None:
            self._qos2_in.discard(packet.packet_id)
        if self.session.release(packet.packet_id):
            self.send(PubComp(packet.packet_id))
        else:
            code = ReasonCode.PACKET_IDENTIFIER_NOT_FOUND if self.version == MQTT_5 else 0
            self.send(PubComp(packet.packet_id, code))

    def _on_pubcomp(self, packet: PubComp) -> None:
        assert self.session is not None
        self.session.on_pubcomp(packet.packet_id, self.broker.clock())

    # -- SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT, AUTH ----------------------------------

    def _on_subscribe(self, packet: Subscribe) -> None:
        codes, retained = self.broker.subscribe(self, packet)
        self.send(SubAck(packet.packet_id, codes))
        # Retained messages after the SUBACK, as Mosquitto does.
        session = self.session
        assert session is not None
        for message, qos, sub_ids in retained:
            session.deliver(message, qos, True, sub_ids)  # MQTT-3.3.1-9 (3.1.1: -8)

    def _on_unsubscribe(self, packet: Unsubscribe) -> None:
        codes = self.broker.unsubscribe(self, packet)
        self.send(UnsubAck(packet.packet_id, codes))

    def _on_pingreq(self, packet: PingReq) -> None:
        self.send(PingResp())  # MQTT-3.12.4-1

    def _on_disconnect(self, packet: Disconnect) -> None:
        session = self.session
        assert session is not None
        if self.version == MQTT_5:
            expiry = packet.properties.session_expiry_interval
            if expiry is not None:
                if self.connect_expiry == 0 and expiry != 0:
                    raise protocol_error("session expiry set on DISCONNECT after 0 on CONNECT")
                session.expiry_interval = expiry
        # MQTT-3.1.2-10 / MQTT-3.14.4-3: a normal DISCONNECT deletes the will; v5 reason 0x04
        # (Disconnect with Will Message) keeps it.
        self._clean_exit = not (self.version == MQTT_5
                                and packet.reason_code == ReasonCode.DISCONNECT_WITH_WILL)
        self.sink.close()
        reason = "client disconnected"
        if packet.reason_code:
            reason += f" with reason 0x{packet.reason_code:02X}"
        self._finish(reason)

    # -- enhanced authentication (MQTT 5.0 4.12) -----------------------------------------

    def start_exchange(self, method: Any, packet: Connect) -> None:
        """The broker accepted the CONNECT's Authentication Method: run its first step."""
        self.auth_method = method.name
        self._method = method
        self._connect = packet
        self._exchange = method.begin()
        self._auth_step(packet.properties.authentication_data)

    def _on_auth(self, packet: Packet) -> None:
        assert isinstance(packet, Auth)
        if self.auth_method is None:
            # MQTT-4.12.0-6 (no method at CONNECT: AUTH is out of place)
            raise protocol_error("AUTH without an authentication method")
        props = packet.properties
        if props.authentication_method != self.auth_method:
            raise protocol_error("AUTH with another authentication method")  # MQTT-4.12.0-5
        reason = packet.reason_code
        if reason == ReasonCode.RE_AUTHENTICATE and self.state == CONNECTED \
                and self._exchange is None:
            self._exchange = self._method.begin()  # MQTT 5.0 4.12.1
        elif reason != ReasonCode.CONTINUE_AUTHENTICATION or self._exchange is None:
            raise protocol_error(f"AUTH with reason 0x{reason:02X} out of place")
        self._auth_step(props.authentication_data)

    def _auth_step(self, data: bytes | None) -> None:
        exchange = self._exchange
        try:
            done, reply = exchange.step(data)
        except Exception as exc:  # a method refuses by raising
            self._exchange = None
            why = f"{self.auth_method} authentication failed: {exc}"
            if self.state == AUTHENTICATING:
                assert self._connect is not None
                self.authenticated(self._connect, (ReasonCode.BAD_USER_NAME_OR_PASSWORD, why))
            else:
                self.close(ReasonCode.NOT_AUTHORIZED, why)  # MQTT-4.12.1-2
            return
        if not done:
            self.send(Auth(ReasonCode.CONTINUE_AUTHENTICATION,
                           Properties(authentication_method=self.auth_method,
                                      authentication_data=reply)))
            return
        self._exchange = None
        client = self.client
        assert client is not None
        if self.state == AUTHENTICATING:
            assert self._connect is not None
            self.client = replace(client, username=exchange.username)
            self.auth_reply = reply
            self.broker.authorize_will(self, self._connect, None)
        elif exchange.username != client.username:
            self.close(ReasonCode.NOT_AUTHORIZED, "re-authenticated as another user")
        else:
            self.send(Auth(ReasonCode.SUCCESS,
                           Properties(authentication_method=self.auth_method,
                                      authentication_data=reply)))

    def _on_connect_again(self, packet: Packet) -> None:
        raise protocol_error("second CONNECT")  # MQTT-3.1.0-2


def _explained(make: Callable[[Properties], Packet], why: str, limit: int) -> Packet:
    """``make``'s packet with a Reason String saying ``why``, unless that would make it larger
    than the client's Maximum Packet Size (MQTT-3.2.2-19, MQTT-3.14.2-3). CONNACK and DISCONNECT
    may carry one whatever the client's Request Problem Information (MQTT-3.1.2-29)."""
    packet = make(Properties(reason_string=why))
    if limit and len(packet.encode(MQTT_5)) > limit:
        packet = make(NO_PROPERTIES)
    return packet


_HANDLERS: dict[type[Packet], Any] = {
    PubAck: Connection._on_puback,
    PubRec: Connection._on_pubrec,
    PubRel: Connection._on_pubrel,
    PubComp: Connection._on_pubcomp,
    Subscribe: Connection._on_subscribe,
    Unsubscribe: Connection._on_unsubscribe,
    PingReq: Connection._on_pingreq,
    Disconnect: Connection._on_disconnect,
    Connect: Connection._on_connect_again,
    Auth: Connection._on_auth,
}
