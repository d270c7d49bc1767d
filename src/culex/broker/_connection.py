"""One client connection: the protocol state between a socket and the broker.

Still sans-IO: bytes come in through ``data_received``, bytes go out through a ``Sink`` (the
transport layer coalesces them), and time comes from the host's clock. One handler per packet
kind; every protocol violation, wherever it is found, becomes an ``MQTTError`` and is turned
into a DISCONNECT (v5) or a closed connection (v3) in one place, ``_violation``. Its states and
their transitions are in ``_states``.

The connection knows the broker only as a ``Host``: what it asks of it. It writes no field of
the broker's objects, and the broker writes none of its: an accepted CONNECT comes back as an
``Accepted`` value that the connection applies to itself.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..protocol import (
    MQTT_5,
    V5_TO_V3_CONNACK,
    Auth,
    ConnAck,
    Connect,
    Decoder,
    Disconnect,
    MQTTError,
    Packet,
    PingReq,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    ReasonCode,
    Subscribe,
    Unsubscribe,
    UnsupportedProtocolVersion,
    protocol_error,
)
from ._connect import identify
from ._handlers import Handlers
from ._held import HeldWrites
from ._host import Host, Sink
from ._message import Message
from ._reasons import CLOSE_REASONS, explained, reason_name
from ._states import AUTHENTICATING, CLOSED, CONNECTED, NEW, State, check

if TYPE_CHECKING:
    from ..auth import ClientInfo
    from ..config import ListenerConfig
    from ._connect import Accepted, Refusal
    from ._session import Session

__all__ = ["Connection", "Host", "Sink"]

log = logging.getLogger("culex")

# Largest CONNECT read from a peer nobody has authenticated yet. Every field of a CONNECT is at
# most 65,535 bytes and a legitimate one stays far below this; without the cap a stranger could
# make the broker buffer up to max_packet_size (256 MB by default) before saying who it is.
MAX_CONNECT_SIZE = 1 << 20
# Up to this size a payload is joined to its header (a cheap copy) rather than written apart.
SMALL_PAYLOAD = 1024
VERSION_NAMES = {3: "3.1", 4: "3.1.1", 5: "5.0"}
# Why reading from a client is paused (bits of Connection._read_holds): what is written to it
# is not being read, or a subscriber it publishes to is slow (see _flow).
_OUTPUT_FULL = 1
_WAITING = 2
# Refusals that say a client is not who it claims (or may not come in): they slow its address.
_LOGIN_FAILURES = frozenset({ReasonCode.BAD_USER_NAME_OR_PASSWORD, ReasonCode.NOT_AUTHORIZED})


class Connection(Handlers):
    __slots__ = ()  # ConnectionParts' (_parts)

    def __init__(self, host: Host, sink: Sink, peer: str,
                 listener: ListenerConfig | None = None, cert_subject: str | None = None,
                 cert_cn: str | None = None) -> None:
        self.host = host
        self._counters = host.counters
        self.sink = sink
        self.peer = peer
        self.listener = listener
        self.cert_subject = cert_subject  # of a verified TLS client certificate
        self.cert_cn = cert_cn
        self.client: ClientInfo | None = None  # who this is, once authenticated
        self.decoder = Decoder(min(host.config.packet_size_limit, MAX_CONNECT_SIZE),
                               budget=host.assembly)
        self.state: State = NEW
        self.version = 0
        self.bridge = False  # a 3.x bridge that said so (try_private)
        self.client_id = ""
        self.session: Session | None = None
        self.keep_alive = 0
        self.send_window = 0
        self.max_out_packet = 0  # the client's Maximum Packet Size (v5); 0 = no limit
        # Topic aliases towards an MQTT 5 client that accepts them (its Topic Alias Maximum):
        # the first topics it is sent get one each, for the life of the connection.
        self.max_out_alias = 0
        self.out_aliases: dict[str, int] | None = None
        # Inbound topic aliases (MQTT-3.3.2-7: per connection), made on first use.
        self.aliases: dict[int, str] | None = None
        self.paused = False  # the transport's buffer is full: queue instead of writing
        self._read_holds = 0  # why reading from the client is paused (_OUTPUT_FULL, _WAITING)
        # Writes waiting for a store commit (see hold) or, in a cluster, for the other nodes
        # (see hold_for_peers); None while nothing is held. What each has released so far.
        self._held: HeldWrites | None = None
        self._store_done = 0
        self._peers_done = 0
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
        self._last_rx = host.clock()
        # One deadline per connection: the connect timeout first, then the keep-alive check.
        host.deadlines.arm(self, self._last_rx + host.config.connect_timeout)

    def _enter(self, state: State) -> None:
        self.state = check(self.state, state)

    # -- input ------------------------------------------------------------------------------

    def data_received(self, data: bytes | bytearray | memoryview) -> None:
        if self.state is CLOSED:
            return  # MQTT-3.1.4-6: nothing after a refused CONNECT or a DISCONNECT is read
        self._counters.bytes_received += len(data)
        self._last_rx = self.host.clock()
        decoder = self.decoder
        if self.state is NEW and not decoder.buffered and data[:1] != b"\x10":
            # MQTT-3.1.0-1: not a CONNECT, so not worth waiting for the rest of it.
            self._refuse_quietly("first packet is not CONNECT")
            return
        decoder.feed(data)
        if self.state is AUTHENTICATING:
            # Packets wait, in order, until the client is accepted (MQTT-3.1.4-6); a client
            # that keeps sending meanwhile is not given unbounded memory.
            if decoder.buffered > MAX_CONNECT_SIZE:
                self._refuse_quietly("too much data before CONNACK")
            elif self._exchange is not None:
                self._process_exchange()
            return
        self._process()

    def _process(self) -> None:
        decoder = self.decoder
        self._in_process = True
        count = 0  # packets handled, counted once at the end: cheaper than one by one
        try:
            deferred, self._deferred = self._deferred, None
            for waiting in deferred or ():
                if self.state is CONNECTED:
                    count += 1
                    self._handle(waiting)
            # A hold stops the processing too, not only the reading: what was read stays in
            # the decoder (one read at most) until the hold is released.
            while (self.state is CONNECTED or self.state is NEW) and not self._read_holds:
                packet = decoder.next_packet()
                if packet is None:
                    break
                count += 1
                self._handle(packet)
        except MQTTError as exc:
            self._violation(exc)
        finally:
            self._in_process = False
            self._counters.packets_received += count

    def _handle(self, packet: Packet) -> None:
        kind = type(packet)
        if kind is Publish:
            self._on_publish(packet)  # type: ignore[arg-type]
            return
        if self.state is NEW:
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
        self._finish("connection lost", "lost")

    # Flow control. Reading from the client stops while what is written to it is not being
    # read (its replies would pile up here), and while a subscriber it publishes to is slow
    # (see _flow); it resumes when neither holds.

    def pause_writing(self) -> None:
        """The transport's output buffer is above its high-water mark."""
        self.paused = True
        self._hold_reading(_OUTPUT_FULL)

    def resume_writing(self) -> None:
        self.paused = False
        self._release_reading(_OUTPUT_FULL)
        if self.session is not None and self.state is CONNECTED:
            self.session.pump(self.host.clock())

    def hold_reading(self) -> None:
        """A subscriber this client publishes to is slow: wait for it."""
        self._hold_reading(_WAITING)

    def release_reading(self) -> None:
        self._release_reading(_WAITING)

    def _hold_reading(self, reason: int) -> None:
        if not self._read_holds and self.state is not CLOSED:
            self.sink.pause_reading()
        self._read_holds |= reason

    def _release_reading(self, reason: int) -> None:
        if not self._read_holds & reason:
            return
        self._read_holds &= ~reason
        if self._read_holds or self.state is CLOSED:
            return
        # The time reading was held counts as activity for the keep-alive: the client's
        # packets, PINGREQ included, were waiting on our side.
        self._last_rx = self.host.clock()
        if self.decoder.buffered and not self._in_process:
            self._process()  # what was read before the hold, first
        if not self._read_holds and self.state is not CLOSED:
            self.sink.resume_reading()

    # -- output -----------------------------------------------------------------------------

    def write(self, data: bytes | memoryview) -> None:
        """Write encoded packets, after the writes that wait for the store, if any."""
        if self._held is not None:
            self._held.add(data)
        else:
            self.sink.write(data)

    def send(self, packet: Packet) -> None:
        """Any packet but PUBLISH (which is send_publish's)."""
        self._counters.other_packets_sent += 1
        self.write(packet.encode(self.version))

    def send_publish(self, message: Message, qos: int, retain: bool, dup: bool, packet_id: int,
                     sub_ids: tuple[int, ...]) -> bool:
        """Write one PUBLISH; False if it is larger than the client accepts (not sent)."""
        payload = message.payload
        if (not qos and not sub_ids and self.out_aliases is None and message.expiry_at is None
                and len(payload) <= SMALL_PAYLOAD):
            # The common fan-out case: the same bytes for every such subscriber.
            data = message.qos0_packet(self.version == MQTT_5, retain)
            if self.max_out_packet and len(data) > self.max_out_packet:
                return False  # MQTT-3.1.2-24, -25
            counters = self._counters
            counters.messages_sent[0] += 1
            counters.publish_bytes_sent += len(payload)
            (self.write if self._held is not None else self.sink.write)(data)
            return True
        now = self.host.clock() if message.expiry_at is not None else 0.0
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
        if self.max_out_packet and len(header) + len(payload) > self.max_out_packet:
            return False  # MQTT-3.1.2-24, -25
        if alias and out_aliases is not None:
            # Only once the packet that teaches the client the alias is surely sent.
            out_aliases[message.topic] = alias
        counters = self._counters
        counters.messages_sent[qos] += 1
        counters.publish_bytes_sent += len(payload)
        write = self.write if self._held is not None else self.sink.write
        if len(payload) <= SMALL_PAYLOAD:
            write(header + payload)  # one buffer instead of two for the transport
        else:
            write(header)
            write(payload)  # large payloads are never copied
        return True

    def send_pubrel(self, packet_id: int) -> None:
        self.send(PubRel(packet_id))

    # -- closing ----------------------------------------------------------------------------

    def close(self, reason: ReasonCode, why: str) -> None:
        """Server-initiated close: tell a v5 client why (MQTT 4.13), then hang up."""
        if self.state is CONNECTED and self.version == MQTT_5:
            self.send(explained(lambda props: Disconnect(reason, props), why,
                                 self.max_out_packet))
        self.sink.close()
        self._finish(why, CLOSE_REASONS.get(reason, "protocol_error"))

    def _violation(self, exc: MQTTError) -> None:
        if self.state is NEW:
            if isinstance(exc, UnsupportedProtocolVersion):
                # MQTT-3.1.2-2 (3.1.1): CONNACK 0x01 in the 3.1.1 form, which all can read.
                self.sink.write(ConnAck(False, 1).encode(4))
                self._refuse_quietly(str(exc), "unsupported_protocol_version")
                return
            self._refuse_quietly(str(exc))
            return
        self.close(exc.reason_code, f"protocol error: {exc}")

    def _refuse_quietly(self, why: str, counted_as: str = "protocol_error") -> None:
        log.info("refused: connection from %s: %s", self.peer, why,
                 extra={"event": "refused", "peer": self.peer,
                        "client_id": self.client_id or None, "reason": counted_as})
        self._counters.refuse(counted_as)
        self._closed()
        self.sink.close()

    def _closed(self) -> None:
        self._enter(CLOSED)
        self.decoder.discard()  # a large packet half received gives its room back
        self.host.deadlines.disarm(self)

    def _finish(self, why: str, counted_as: str) -> None:
        if self.state is CLOSED:
            return
        was_connected = self.state is CONNECTED
        self._closed()
        if was_connected:
            self._counters.close(counted_as)
            log.info("disconnected: client %s from %s: %s", self.client_id, self.peer, why,
                     extra={"event": "disconnected", "client_id": self.client_id,
                            "peer": self.peer, "reason": counted_as})
            assert self.session is not None
            self.host.disconnected(self, self.session, not self._clean_exit)

    def deadline_passed(self, now: float) -> None:
        if self.state is NEW:
            self._refuse_quietly("no CONNECT in time", "timeout")
        elif self.state is AUTHENTICATING:
            # A plugin slower than connect_timeout, or an attempt made to wait for its turn
            # after failed logins from its address.
            self._refuse_quietly("not authenticated within connect_timeout", "timeout")
        elif self.state is CONNECTED and self._keepalive_limit:
            # Re-armed from the time of the last packet, instead of being moved for every
            # packet.
            if now - self._last_rx >= self._keepalive_limit and not self._read_holds:
                self.close(ReasonCode.KEEP_ALIVE_TIMEOUT, "keep-alive timeout")  # MQTT-3.1.2-22
            else:
                self.host.deadlines.arm(self, self._last_rx + self._keepalive_limit)

    # -- CONNECT ----------------------------------------------------------------------------

    def _on_connect(self, packet: Connect) -> None:
        self.version = packet.protocol_version
        self.bridge = packet.bridge
        host = self.host
        refusal = host.check_connect(packet)
        if refusal is not None:
            self._refuse_connect(packet, *refusal)
            return
        self._enter(AUTHENTICATING)
        self._connect = packet
        # An empty id is replaced first, so that ACL patterns (%c) see the real one.
        self.client_id = packet.client_id or host.assign_client_id()  # MQTT-3.1.3-6
        client, by_certificate = identify(self.listener, packet, self.client_id, self.peer,
                                          self.cert_subject, self.cert_cn)
        self.client = client
        # The host calls authenticated() now, or later when a plugin has answered.
        host.authenticate(self, packet, client, by_certificate, self.listener)

    def authenticated(self, client: ClientInfo, refusal: Refusal | None) -> None:
        if self.state is not AUTHENTICATING:
            return  # the client went away while it was being checked
        packet = self._connect
        assert packet is not None
        if refusal is not None:
            self._counters.auth_failures += 1
            if refusal[0] in _LOGIN_FAILURES:
                self.host.login_failed(self.peer)
            self._refuse_connect(packet, *refusal)
            return
        self._counters.auth_successes += 1
        self.client = client
        # In a cluster, the client's session may first have to be brought to this node.
        self.host.admit(self, packet, self._admitted)

    def _admitted(self, refusal: Refusal | None) -> None:
        if self.state is not AUTHENTICATING:
            return  # the client went away meanwhile
        packet = self._connect
        client = self.client
        assert packet is not None and client is not None
        if refusal is not None:
            self._refuse_connect(packet, *refusal)
            return
        accepted = self.host.connect(self, packet, client, self.auth_method, self.auth_reply)
        if accepted is None:
            # MQTT-3.1.2-24: not even the CONNACK fits the client's Maximum Packet Size.
            self._refuse_quietly(f"client {self.client_id!r}: its Maximum Packet Size is "
                                 "smaller than the CONNACK", "packet_too_large")
            return
        self._enter(CONNECTED)
        self._connect = None
        self.decoder.max_packet_size = self.host.config.packet_size_limit
        self._accepted(accepted)
        if not self._in_process:
            self._process()  # what arrived while the plugins were deciding

    def _accepted(self, accepted: Accepted) -> None:
        """Apply what the CONNECT negotiated, send the CONNACK, resume the session."""
        self.session = accepted.session
        self.connect_expiry = accepted.expiry
        self.keep_alive = accepted.keep_alive
        self.send_window = accepted.send_window
        self.max_out_packet = accepted.max_out_packet
        if accepted.max_out_alias:
            self.max_out_alias = accepted.max_out_alias
            self.out_aliases = {}
        self._counters.other_packets_sent += 1
        self.write(accepted.connack)
        log.info("connected: client %s from %s, MQTT %s, %s, keep-alive %ds",
                 self.client_id, self.peer, VERSION_NAMES[self.version],
                 "session resumed" if accepted.session_present else "new session",
                 self.keep_alive,
                 extra={"event": "connected", "client_id": self.client_id, "peer": self.peer})
        if accepted.session_present:
            accepted.session.resume(self.host.clock())  # a new session has nothing to resend
        deadlines = self.host.deadlines
        if self.keep_alive:
            self._keepalive_limit = self.keep_alive * 1.5
            # The CONNECT timeout, if it comes first, becomes the keep-alive check (which
            # re-arms itself), as most connections live longer than that timeout.
            deadlines.arm_by(self, self._last_rx + self._keepalive_limit)
        else:
            deadlines.disarm(self)

    def _refuse_connect(self, packet: Connect, reason: int, why: str) -> None:
        if self.version == MQTT_5:
            limit = packet.properties.maximum_packet_size or 0
            self.send(explained(lambda props: ConnAck(False, reason, props), why, limit))
        elif (code := V5_TO_V3_CONNACK.get(reason)) is not None:
            self.send(ConnAck(False, code))  # MQTT-3.2.2-6: session present 0
        user = f", user {packet.username!r}" if packet.username is not None else ""
        # An empty client id has been replaced by an assigned one by now, if it got that far.
        self._refuse_quietly(f"client {self.client_id or packet.client_id!r}{user}: {why}",
                             reason_name(reason))


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
