"""One handler per packet kind a connected client sends: PUBLISH and the QoS 1/2 flows
(MQTT 4.3), SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT. A part of ``Connection``, kept apart
from its life cycle and I/O so that each reads on its own."""

from __future__ import annotations

from dataclasses import replace

from ..protocol import (
    MQTT_5,
    NO_PROPERTIES,
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
    is_utf8,
    is_valid_topic_name,
    protocol_error,
)
from ._enhanced_auth import EnhancedAuth
from ._states import CONNECTED


class Handlers(EnhancedAuth):
    """The third part of Connection (see _parts)."""

    __slots__ = ()

    # -- PUBLISH and its acknowledgements ----------------------------------------------------

    def _on_publish(self, packet: Publish) -> None:
        if self.state is not CONNECTED:
            raise protocol_error("PUBLISH before CONNECT")  # MQTT-3.1.0-1
        topic = packet.topic
        props = packet.properties
        if props is not NO_PROPERTIES:
            topic = self._checked_topic(topic, props)
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
        counters = self._counters
        counters.messages_received[qos] += 1
        counters.publish_bytes_received += len(packet.payload)
        config = self.host.config
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
            self.host.publish_from_client(self, topic, packet)
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
        # The host holds this connection's writes if the message went to a persistent session
        # or the retained store: the acknowledgement then waits until that is on disk.
        reason = self.host.publish_from_client(self, topic, packet)
        if qos == 1:
            self.send(PubAck(packet.packet_id, reason if self.version == MQTT_5 else 0))
        elif qos == 2:
            if reason < 0x80:  # else the exchange ends here (MQTT 4.3.3)
                session.await_release(packet.packet_id)
                if received is not None:
                    received.add(packet.packet_id)
            self.send(PubRec(packet.packet_id, reason if self.version == MQTT_5 else 0))

    def not_received(self, packet_id: int) -> None:
        """In a cluster: the QoS 2 message of ``packet_id`` was not stored after all (its
        PUBREC never goes out): no longer awaited, so that, sent again, it is routed."""
        if self.session is not None:
            self.session.release(packet_id)
        if self._qos2_in is not None:
            self._qos2_in.discard(packet_id)

    def _checked_topic(self, topic: str, props: Properties) -> str:
        """An MQTT 5 PUBLISH's properties checked; its topic, through its Topic Alias."""
        if props.subscription_identifiers:
            raise protocol_error("PUBLISH from a client with a subscription identifier")
        response = props.response_topic
        if response is not None and not is_valid_topic_name(response):
            raise protocol_error(f"invalid response topic {response!r}")  # MQTT-3.3.2-14
        alias = props.topic_alias
        if alias is not None:
            if not 0 < alias <= self.host.config.max_topic_alias:
                raise MQTTError(ReasonCode.TOPIC_ALIAS_INVALID,
                                f"topic alias {alias}")  # MQTT-3.2.2-17
            aliases = self.aliases
            if topic:
                if aliases is None:
                    aliases = self.aliases = {}
                aliases[alias] = topic
            else:
                topic = aliases.get(alias, "") if aliases is not None else ""
                if not topic:
                    raise protocol_error(f"unknown topic alias {alias}")
        return topic

    def _on_puback(self, packet: PubAck) -> None:
        session = self.session
        assert session is not None
        if not session.on_puback(packet.packet_id, self.host.clock()) \
                and session.in_flight_qos(packet.packet_id) == 2:
            # A QoS 2 delivery is answered by PUBREC (MQTT 4.3.3), never PUBACK.
            raise protocol_error(f"PUBACK for packet {packet.packet_id}, sent at QoS 2")

    def _on_pubrec(self, packet: PubRec) -> None:
        assert self.session is not None
        if self.session.in_flight_qos(packet.packet_id) == 1:
            # A QoS 1 delivery is acknowledged by PUBACK only (MQTT 4.3.2): answering this
            # PUBREC with a PUBREL would start a QoS 2 exchange the broker never began.
            raise protocol_error(f"PUBREC for packet {packet.packet_id}, sent at QoS 1")
        if self.session.on_pubrec(packet.packet_id, packet.reason_code >= 0x80,
                                  self.host.clock()):
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
        self.session.on_pubcomp(packet.packet_id, self.host.clock())

    # -- SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT, AUTH ----------------------------------

    def _on_subscribe(self, packet: Subscribe) -> None:
        session = self.session
        assert session is not None
        if self.bridge:
            # Mosquitto's try_private: what a 3.x bridge publishes is not sent back to it,
            # and what it receives keeps its retain flag (MQTT 5's No Local and Retain As
            # Published, which 3.x cannot ask for).
            packet = replace(packet, subscriptions=[
                replace(request, no_local=True, retain_as_published=True)
                for request in packet.subscriptions])
        codes, retained = self.host.subscribe(session, self.version, packet)
        self.send(SubAck(packet.packet_id, codes))
        # Retained messages after the SUBACK, as Mosquitto does (MQTT-3.3.1-9, 3.1.1: -8).
        session.stream_retained(retained, self.host.clock())

    def _on_unsubscribe(self, packet: Unsubscribe) -> None:
        assert self.session is not None
        codes = self.host.unsubscribe(self.session, packet)
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
                session.set_expiry(expiry)
        # MQTT-3.1.2-10 / MQTT-3.14.4-3: a normal DISCONNECT deletes the will; v5 reason 0x04
        # (Disconnect with Will Message) keeps it.
        self._clean_exit = not (self.version == MQTT_5
                                and packet.reason_code == ReasonCode.DISCONNECT_WITH_WILL)
        self.sink.close()
        reason = "client disconnected"
        if packet.reason_code:
            reason += f" with reason 0x{packet.reason_code:02X}"
        self._finish(reason, "client")

    def _on_connect_again(self, packet: Packet) -> None:
        raise protocol_error("second CONNECT")  # MQTT-3.1.0-2
