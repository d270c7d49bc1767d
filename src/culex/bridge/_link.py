"""One bridge: a link from this broker to a remote one.

Outgoing, the link is a subscriber like any other: a persistent session of its own (client id
``local_clientid``) holds subscriptions to the ``out`` topics and is attached, through the
delivery-target seam, to ``LinkTarget`` while the remote broker is connected. Messages that
come while it is not wait in that session, within the queue limits and, with persistence, on
disk; in-flight ones are resent when it comes back, QoS 2 exchanges resumed where they were
(PUBREL included). Incoming, the link's MQTT client subscribes to the ``in`` topics on the
remote broker and publishes what arrives into this one, as coming from the link's session.

No loops: the link's local subscriptions are No Local, so what came in is not sent back out;
on the remote side, MQTT 5 links subscribe with No Local and Retain As Published, and 3.1.1
links announce themselves as a bridge (``try_private``), which Mosquitto and culex honour the
same way.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import TYPE_CHECKING

from ..client import Client, ClientOptions, ConnectRefused, TLSOptions
from ..protocol import (
    MQTT_3_1_1,
    MQTT_5,
    NO_PROPERTIES,
    Packet,
    Properties,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    ReasonCode,
    Subscribe,
    SubscriptionRequest,
    Unsubscribe,
    Will,
    topic_matches,
)

if TYPE_CHECKING:
    from ..bridgeconfig import BridgeConfig, TopicRule
    from ..broker import Broker, Message, Session

log = logging.getLogger("culex")

NEVER = 0xFFFFFFFF


class LinkTarget:
    """The delivery target of the link's session: PUBLISH and PUBREL to the remote broker,
    held while the store writes what they depend on (as a client connection's are)."""

    def __init__(self, link: Link, client: Client) -> None:
        self._link = link
        self._client = client
        self._hold_until = 0
        self._held: list[tuple[int, Packet]] = []

    @property
    def send_window(self) -> int:
        # Within the remote broker's Receive Maximum (MQTT 5), and max_inflight_messages:
        # a 3.1.1 broker has no way to say how many it takes, and Mosquitto drops what
        # comes beyond its own limit (20).
        connack = self._client.connack
        server_max = connack.properties.receive_maximum if connack is not None else None
        own = self._link.broker.limits.max_inflight_messages or 20
        return min(server_max or 65535, own)

    def acknowledge(self, packet: Publish) -> None:
        """PUBACK or PUBREC for a message from the remote broker, after what this broker's
        store must write for it (nothing acknowledged is lost to a crash here)."""
        ack = PubAck(packet.packet_id) if packet.qos == 1 else PubRec(packet.packet_id)
        self._write(ack)

    @property
    def paused(self) -> bool:
        return not self._client.writable

    def send_publish(self, message: Message, qos: int, retain: bool, dup: bool, packet_id: int,
                     sub_ids: tuple[int, ...]) -> bool:
        link = self._link
        topic = link.remote_topic(message.topic)
        limit = link.config.max_packet_size
        if topic is None or (limit and len(message.payload) + len(topic) + 16 > limit):
            return False
        properties = message.properties if link.version == MQTT_5 else NO_PROPERTIES
        self._write(Publish(topic, message.payload, qos,
                            retain and link.config.outgoing_retain, dup, packet_id, properties))
        return True

    def send_pubrel(self, packet_id: int) -> None:
        self._write(PubRel(packet_id))

    def close(self, reason: ReasonCode, why: str) -> None:
        self._client.close()

    def hold(self, batch: int) -> None:
        self._hold_until = batch

    def release(self, batch: int) -> None:
        count = 0
        for waits_for, _ in self._held:
            if waits_for > batch:
                break
            count += 1
        for _, packet in self._held[:count]:
            self._send(packet)
        del self._held[:count]
        if self._hold_until <= batch:
            self._hold_until = 0

    def waiting_for(self) -> int:
        return self._held[0][0] if self._held else 0

    def _write(self, packet: Packet) -> None:
        if self._hold_until:
            self._held.append((self._hold_until, packet))
        else:
            self._send(packet)

    def _send(self, packet: Packet) -> None:
        if not self._client.closed.done():
            self._client.send_packet(packet)


class Link:
    def __init__(self, config: BridgeConfig, broker: Broker) -> None:
        self.config = config
        self.broker = broker
        self.version = MQTT_5 if config.protocol_version == "mqttv50" else MQTT_3_1_1
        self.outgoing = [rule for rule in config.topics if rule.direction != "in"]
        self.incoming = [rule for rule in config.topics if rule.direction != "out"]
        self.connected = False
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._client: Client | None = None
        self._target: LinkTarget | None = None
        self.session: Session | None = None  # the link's session, while attached

    # -- topics ------------------------------------------------------------------------------

    def remote_topic(self, topic: str) -> str | None:
        rule = _first(self.outgoing, topic, local=True)
        return rule.to_remote(topic) if rule is not None else None

    def local_topic(self, topic: str) -> tuple[str, int] | None:
        rule = _first(self.incoming, topic, local=False)
        return (rule.to_local(topic), rule.qos) if rule is not None else None

    # -- life --------------------------------------------------------------------------------

    def start(self) -> None:
        self._subscribe_locally()
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        self._stopping = True
        if self._client is not None:
            await self._client.disconnect()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _subscribe_locally(self) -> None:
        """The link's session subscribes to the out topics once: it keeps them (and what
        they bring while the remote broker is away) from then on."""
        broker = self.broker
        wanted = {rule.local_filter: rule.qos for rule in self.outgoing}
        # Attached for a moment (a session restored from the store is made the link's again:
        # no client identity, retained messages kept), subscribed if it is not yet.
        target = _Detached()
        session = broker.attach_link(target, self.config.local_clientid)
        requests = [SubscriptionRequest(topic, qos, no_local=True, retain_as_published=True,
                                        retain_handling=1) for topic, qos in wanted.items()
                    if topic not in session.subscriptions]
        gone = [topic for topic in session.subscriptions if topic not in wanted]
        if gone:  # the configuration changed (SIGHUP)
            broker.unsubscribe(session, Unsubscribe(1, gone))
        if requests:
            _, retained = broker.subscribe(session, MQTT_5, Subscribe(1, requests))
            for message, qos, sub_ids in retained:  # the current values go across too
                session.deliver(message, qos, True, sub_ids)
        broker.disconnected(target, session, publish_will=False)

    async def _run(self) -> None:
        config = self.config
        delay = config.restart_timeout[0]
        index = 0
        while not self._stopping:
            host, port = config.addresses[index]
            try:
                await self._connect(host, port)
            except ConnectRefused as exc:
                log.warning("bridge %s: refused by %s:%d (CONNACK %#x)", config.name, host,
                            port, exc.code)
                index = (index + 1) % len(config.addresses)
            except OSError as exc:
                log.warning("bridge %s: cannot connect to %s:%d: %s", config.name, host, port,
                            exc)
                index = (index + 1) % len(config.addresses)  # the next address, round
            else:
                delay = config.restart_timeout[0]
                index = 0  # after a connection ends, the first address first
                await self._serve()
            if self._stopping or config.start_type == "once":
                return
            # Backoff with jitter: a crowd of bridges does not come back in step.
            delay = min(config.restart_timeout[1], delay * 2)
            await asyncio.sleep(random.uniform(config.restart_timeout[0] / 2, delay))

    async def _connect(self, host: str, port: int) -> None:
        config = self.config
        tls = None
        if config.cafile or config.certfile:
            tls = TLSOptions(config.cafile, None, config.certfile, config.keyfile,
                             config.insecure, config.tls_version)
        will = None
        if config.notifications:
            # The remote broker says the link is down when it goes away unannounced.
            will = Will(config.notification_topic, b"0", 1, True)
        properties = Properties()
        if self.version == MQTT_5 and not config.cleansession:
            properties = Properties(session_expiry_interval=NEVER)
        options = ClientOptions(
            host=host, port=port, tls=tls, version=self.version,
            client_id=config.remote_clientid, clean_start=config.cleansession,
            keep_alive=config.keepalive_interval, username=config.remote_username,
            password=(config.remote_password.encode()
                      if config.remote_password is not None else None),
            will=will, properties=properties,
            bridge=self.version != MQTT_5 and config.try_private)
        client = Client(options, on_message=self._inbound)
        client.on_ack = self._acknowledged
        client.on_writable = self._writable
        self._target = target = LinkTarget(self, client)
        client.on_inbound_ack = target.acknowledge
        await client.connect()
        self._client = client
        log.info("bridge %s: connected to %s:%d", config.name, host, port)

    async def _serve(self) -> None:
        client = self._client
        assert client is not None
        config = self.config
        v5 = self.version == MQTT_5
        requests = [SubscriptionRequest(rule.remote_filter, rule.qos, no_local=v5,
                                        retain_as_published=v5) for rule in self.incoming]
        if requests:
            codes = await client.subscribe(requests)
            for rule, code in zip(self.incoming, codes, strict=False):
                if code >= 0x80:
                    log.warning("bridge %s: the remote broker refused %r (%#x)", config.name,
                                rule.remote_filter, code)
        if config.notifications:
            # QoS 0: the link's packet ids belong to its session's messages.
            await client.publish(config.notification_topic, b"1", 0, True)
            self.broker.publish_sys(config.notification_topic, b"1")
        target = self._target
        assert target is not None
        session = self.session = self.broker.attach_link(target, config.local_clientid)
        self.connected = True
        try:
            reason = await client.closed
        finally:
            self.connected = False
            self.session = None
            self.broker.disconnected(target, session, publish_will=False)
            if config.notifications:
                self.broker.publish_sys(config.notification_topic, b"0")
            self._client = None
        if not self._stopping:
            log.warning("bridge %s: connection lost: %s", config.name, reason)

    # -- from the remote broker --------------------------------------------------------------

    def _inbound(self, packet: Publish) -> None:
        found = self.local_topic(packet.topic)
        if found is None:
            return
        topic, qos = found
        from ..broker import Message

        message = Message.from_publish(topic, packet.payload, min(packet.qos, qos),
                                       packet.retain, packet.properties, self.broker.clock(),
                                       self.config.local_clientid)
        store = self.broker.store
        changes = store.changes
        self.broker.publish(message)
        if packet.qos and store.changes != changes and self._target is not None:
            store.touch(self._target)  # its acknowledgement waits for the store

    def _acknowledged(self, packet: Packet) -> None:
        session = self.session
        if session is None or self._client is None:
            return
        now = self.broker.clock()
        if isinstance(packet, PubAck):
            session.on_puback(packet.packet_id, now)
        elif isinstance(packet, PubRec):
            store = self.broker.store
            changes = store.changes
            if session.on_pubrec(packet.packet_id, packet.reason_code >= 0x80, now):
                target = session.connection
                if store.changes != changes and target is not None:
                    store.touch(target)  # the PUBREL waits until the new state is on disk
                if target is not None:
                    target.send_pubrel(packet.packet_id)
        elif isinstance(packet, PubComp):
            session.on_pubcomp(packet.packet_id, now)

    def _writable(self) -> None:
        session = self.session
        if session is not None and session.connection is not None:
            session.pump(self.broker.clock())


class _Detached:
    """A target for the moment the link's session is set up: sends nothing (the session is
    detached again at once, so what it would send waits in its queue)."""

    paused = True
    send_window = 0

    def send_publish(self, *args: object) -> bool:
        return True

    def send_pubrel(self, packet_id: int) -> None:
        pass

    def close(self, reason: ReasonCode, why: str) -> None:
        pass

    def hold(self, batch: int) -> None:
        pass

    def release(self, batch: int) -> None:
        pass

    def waiting_for(self) -> int:
        return 0


def _first(rules: list[TopicRule], topic: str, local: bool) -> TopicRule | None:
    for rule in rules:
        if topic_matches(rule.local_filter if local else rule.remote_filter, topic):
            return rule
    return None
