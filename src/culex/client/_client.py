"""An MQTT client on asyncio, on culex's own sans-IO codec: what ``culex pub``, ``sub``, ``rr``
and ``bench`` are made of.

One connection; packets are encoded and decoded by ``culex.protocol``, the same code the broker
runs. Outgoing QoS 1 and 2 messages wait for their acknowledgements (within the broker's
Receive Maximum); incoming ones are acknowledged as MQTT asks (QoS 2: PUBREC at once, the
message delivered once, PUBCOMP on PUBREL). ``debug`` receives one line per packet in
mosquitto_pub's words, for ``-d``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..protocol import (
    MQTT_5,
    NO_PROPERTIES,
    ConnAck,
    Connect,
    Decoder,
    Disconnect,
    MQTTError,
    Packet,
    Payload,
    PingReq,
    PingResp,
    Properties,
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
)
from ._options import ClientOptions
from ._pipes import Pipe, open_pipe


class ConnectRefused(Exception):
    """The broker answered CONNECT with a refusal (``code``: the CONNACK's return or reason
    code)."""

    def __init__(self, code: int, connack: ConnAck) -> None:
        super().__init__(code)
        self.code = code
        self.connack = connack


class ConnectionLost(ConnectionError):
    """The connection ended; ``disconnect``: the broker's DISCONNECT, if it sent one."""

    def __init__(self, why: str, disconnect: Disconnect | None = None) -> None:
        super().__init__(why)
        self.disconnect = disconnect


class Client:
    def __init__(self, options: ClientOptions,
                 on_message: Callable[[Publish], None] | None = None,
                 debug: Callable[[str], None] | None = None) -> None:
        self.options = options
        self.version = options.version
        self.client_id = options.client_id
        self._on_message = on_message
        self.messages: asyncio.Queue[Publish] = asyncio.Queue()
        self._debug = debug
        self._decoder = Decoder(version=options.version)
        self._pipe: Pipe | None = None
        self._loop = asyncio.get_running_loop()
        self._connack: asyncio.Future[ConnAck] = self._loop.create_future()
        self.closed: asyncio.Future[BaseException | None] = self._loop.create_future()
        self._waiting: dict[int, asyncio.Future[Any]] = {}  # packet id -> its answer
        self._next_id = 0
        self._received_qos2: set[int] = set()  # delivered, PUBREL not yet received
        self._aliases: dict[int, str] = {}  # topic aliases the broker set (MQTT 5)
        self._writable = asyncio.Event()
        self._writable.set()
        self._window: asyncio.Semaphore | None = None
        self._sent_since_ping = False
        self._ping: asyncio.TimerHandle | None = None
        self._disconnect: Disconnect | None = None
        self.connack: ConnAck | None = None
        # A bridge link sends PUBLISH and PUBREL with its session's packet ids: it takes the
        # acknowledgements of those itself, and hears when writing may go on.
        self.on_ack: Callable[[Packet], None] | None = None
        self.on_writable: Callable[[], None] | None = None
        # Set, the owner acknowledges received messages itself, once it has kept them (a
        # bridge link: after this broker's store has written them).
        self.on_inbound_ack: Callable[[Publish], None] | None = None

    # -- the pipe's receiver ------------------------------------------------------------------

    def bytes_received(self, data: bytes) -> None:
        decoder = self._decoder
        decoder.feed(data)
        try:
            while (packet := decoder.next_packet()) is not None:
                self._handle(packet)
        except MQTTError as exc:
            self._fail(ConnectionLost(f"malformed packet from the broker: {exc}"))

    def pipe_closed(self, exc: BaseException | None) -> None:
        why = "the broker closed the connection" if exc is None else str(exc)
        self._fail(ConnectionLost(why, self._disconnect))

    def writing_paused(self, paused: bool) -> None:
        if paused:
            self._writable.clear()
        else:
            self._writable.set()
            if self.on_writable is not None:
                self.on_writable()

    @property
    def writable(self) -> bool:
        return self._writable.is_set()

    def send_packet(self, packet: Packet) -> None:
        """Send a packet as it is (a bridge link's PUBLISH and PUBREL)."""
        self._send(packet, None)

    # -- the session --------------------------------------------------------------------------

    async def connect(self, receive_maximum: int = 65535) -> ConnAck:
        """Open the connection and send CONNECT; the CONNACK, or ConnectRefused, OSError."""
        options = self.options
        self._pipe = await open_pipe(options, self)
        self._send(Connect(options.client_id, options.version, options.clean_start,
                           options.keep_alive, options.will, options.username,
                           options.password, options.properties, options.bridge), "CONNECT")
        try:
            connack = await asyncio.wait_for(asyncio.shield(self._connack),
                                             options.connect_timeout)
        except TimeoutError:
            self.close()
            raise ConnectionLost("no CONNACK in time") from None
        if connack.reason_code:
            self.close()
            raise ConnectRefused(connack.reason_code, connack)
        self.connack = connack
        assigned = connack.properties.assigned_client_identifier
        if assigned:
            self.client_id = assigned
        server_max = connack.properties.receive_maximum or 65535
        self._window = asyncio.Semaphore(min(server_max, receive_maximum))
        keep_alive = connack.properties.server_keep_alive or options.keep_alive
        if keep_alive:
            self._ping = self._loop.call_later(keep_alive, self._keep_alive, keep_alive)
        return connack

    async def publish(self, topic: str, payload: Payload, qos: int = 0, retain: bool = False,
                      properties: Properties = NO_PROPERTIES) -> int:
        """Send a message; for QoS 1 and 2, wait for its acknowledgement: the reason code."""
        if not qos:
            await self._writable.wait()
            self._send(Publish(topic, payload, 0, retain, properties=properties), None)
            return 0
        assert self._window is not None, "not connected"
        async with self._window:
            packet_id = self._new_id()
            future = self._waiting[packet_id] = self._loop.create_future()
            await self._writable.wait()
            self._send(Publish(topic, payload, qos, retain, False, packet_id, properties), None)
            code: int = await future
            return code

    async def subscribe(self, requests: list[SubscriptionRequest],
                        properties: Properties = NO_PROPERTIES) -> list[int]:
        """The SUBACK's reason codes, one per request."""
        return await self._ask(lambda packet_id: Subscribe(packet_id, requests, properties))

    async def unsubscribe(self, filters: list[str],
                          properties: Properties = NO_PROPERTIES) -> list[int]:
        """The UNSUBACK's reason codes (MQTT 5; none for 3.x)."""
        return await self._ask(lambda packet_id: Unsubscribe(packet_id, filters, properties))

    async def _ask(self, make: Callable[[int], Packet]) -> list[int]:
        packet_id = self._new_id()
        future = self._waiting[packet_id] = self._loop.create_future()
        self._send(make(packet_id), None)
        codes: list[int] = await future
        return codes

    async def disconnect(self, reason: int = 0,
                         properties: Properties | None = None) -> None:
        """A normal DISCONNECT, then the end of the connection."""
        if self._pipe is not None and not self.closed.done():
            props = self.options.disconnect_properties if properties is None else properties
            self._send(Disconnect(reason, props), "DISCONNECT")
        self.close()
        await asyncio.wait([self.closed], timeout=self.options.connect_timeout)

    def close(self) -> None:
        if self._ping is not None:
            self._ping.cancel()
        if self._pipe is not None:
            self._pipe.close()

    async def drain(self) -> None:
        """Wait while the connection's write buffer is above its high-water mark."""
        await self._writable.wait()

    # -- packets ------------------------------------------------------------------------------

    def _send(self, packet: Packet, name: str | None) -> None:
        if self._pipe is None:
            raise ConnectionLost("not connected")
        if self._debug is not None:
            self._say("sending " + (name or _describe_sent(packet)))
        self._sent_since_ping = True
        self._pipe.write(packet.encode(self.version))

    def _handle(self, packet: Packet) -> None:
        if self._debug is not None:
            self._say("received " + _describe_received(packet))
        kind = type(packet)
        if kind is Publish:
            self._on_publish(packet)  # type: ignore[arg-type]
        elif self.on_ack is not None and (kind is PubAck or kind is PubRec or kind is PubComp):
            self.on_ack(packet)
        elif kind is PubAck or kind is PubComp:
            self._answer(packet.packet_id, packet.reason_code)  # type: ignore[attr-defined]
        elif kind is PubRec:
            rec: PubRec = packet  # type: ignore[assignment]
            if rec.reason_code >= 0x80:
                self._answer(rec.packet_id, rec.reason_code)
            else:
                self._send(PubRel(rec.packet_id), f"PUBREL (m{rec.packet_id})")
        elif kind is PubRel:
            rel: PubRel = packet  # type: ignore[assignment]
            self._received_qos2.discard(rel.packet_id)
            self._send(PubComp(rel.packet_id), f"PUBCOMP (m{rel.packet_id})")
        elif kind is SubAck or kind is UnsubAck:
            self._answer(packet.packet_id, packet.reason_codes)  # type: ignore[attr-defined]
        elif kind is ConnAck:
            if not self._connack.done():
                self._connack.set_result(packet)  # type: ignore[arg-type]
        elif kind is Disconnect:
            self._disconnect = packet  # type: ignore[assignment]
        elif kind is not PingResp:
            self._fail(ConnectionLost(f"unexpected {kind.__name__} from the broker"))

    def _on_publish(self, packet: Publish) -> None:
        alias = packet.properties.topic_alias if self.version == MQTT_5 else None
        if alias is not None:
            if packet.topic:
                self._aliases[alias] = packet.topic
            else:
                packet.topic = self._aliases.get(alias, "")
        qos = packet.qos
        acknowledge = self.acknowledge
        if qos == 2 and packet.packet_id in self._received_qos2:
            # A resend of a message already delivered (MQTT 4.3.3): acknowledged again only.
            if self.on_inbound_ack is None:
                acknowledge(packet)
            else:
                self.on_inbound_ack(packet)
            return
        if qos == 2:
            self._received_qos2.add(packet.packet_id)
        if self.on_inbound_ack is None:
            acknowledge(packet)
        if self._on_message is not None:
            self._on_message(packet)
        else:
            self.messages.put_nowait(packet)
        if self.on_inbound_ack is not None and qos:
            self.on_inbound_ack(packet)  # the owner sends the PUBACK or PUBREC when it may

    def acknowledge(self, packet: Publish) -> None:
        """PUBACK (QoS 1) or PUBREC (QoS 2) for a received PUBLISH."""
        if packet.qos == 1:
            self._send(PubAck(packet.packet_id), f"PUBACK (m{packet.packet_id}, rc0)")
        elif packet.qos == 2:
            self._send(PubRec(packet.packet_id), f"PUBREC (m{packet.packet_id}, rc0)")

    def _answer(self, packet_id: int, value: object) -> None:
        future = self._waiting.pop(packet_id, None)
        if future is not None and not future.done():
            future.set_result(value)

    def _new_id(self) -> int:
        for _ in range(65535):
            self._next_id = self._next_id % 65535 + 1
            if self._next_id not in self._waiting:
                return self._next_id
        raise RuntimeError("every packet identifier is in use")

    def _keep_alive(self, interval: float) -> None:
        if not self._sent_since_ping and not self.closed.done():
            self._send(PingReq(), "PINGREQ")
        self._sent_since_ping = False
        self._ping = self._loop.call_later(interval, self._keep_alive, interval)

    def _fail(self, exc: ConnectionLost) -> None:
        if self.closed.done():
            return
        self.close()
        self.closed.set_result(exc)
        for future in [self._connack, *self._waiting.values()]:
            if not future.done():
                future.set_exception(exc)
        self._waiting.clear()

    def _say(self, what: str) -> None:
        assert self._debug is not None
        self._debug(f"Client {self.client_id or '(null)'} {what}")


def _describe_sent(packet: Packet) -> str:
    if isinstance(packet, Publish):
        return (f"PUBLISH (d{int(packet.dup)}, q{packet.qos}, r{int(packet.retain)}, "
                f"m{packet.packet_id}, '{packet.topic}', ... ({len(packet.payload)} bytes))")
    if isinstance(packet, Subscribe):
        topics = ", ".join(
            f"Topic: {r.topic_filter}, QoS: {r.qos}, Options: 0x{r.options_byte() & ~3:02x}"
            for r in packet.subscriptions)
        return f"SUBSCRIBE (Mid: {packet.packet_id}, {topics})"
    if isinstance(packet, Unsubscribe):
        topics = ", ".join(f"Topic: {topic}" for topic in packet.topic_filters)
        return f"UNSUBSCRIBE (Mid: {packet.packet_id}, {topics})"
    return type(packet).__name__.upper()


def _describe_received(packet: Packet) -> str:
    if isinstance(packet, Publish):
        return (f"PUBLISH (d{int(packet.dup)}, q{packet.qos}, r{int(packet.retain)}, "
                f"m{packet.packet_id}, '{packet.topic}', ... ({len(packet.payload)} bytes))")
    if isinstance(packet, ConnAck):
        return f"CONNACK ({packet.reason_code})"
    if isinstance(packet, PubAck | PubComp):
        return f"{type(packet).__name__.upper()} (Mid: {packet.packet_id}, " \
               f"RC:{packet.reason_code})"
    if isinstance(packet, PubRec | PubRel):
        return f"{type(packet).__name__.upper()} (Mid: {packet.packet_id})"
    if isinstance(packet, Disconnect):
        return f"DISCONNECT ({packet.reason_code})"
    return type(packet).__name__.upper()
