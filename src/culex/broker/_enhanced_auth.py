"""MQTT 5 enhanced authentication (MQTT 5.0 4.12): the AUTH exchange at CONNECT and when a
connected client re-authenticates. A part of ``Connection``, kept apart from its life cycle."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..protocol import (
    Auth,
    Connect,
    MQTTError,
    Packet,
    Properties,
    ReasonCode,
    protocol_error,
)
from ._held import Holds
from ._states import AUTHENTICATING, CONNECTED

# Packets a client may send during its enhanced authentication, kept for after the CONNACK.
MAX_DEFERRED = 1000


class EnhancedAuth(Holds):
    """The second part of Connection (see _parts)."""

    __slots__ = ()

    def _process_exchange(self) -> None:
        """During an enhanced authentication at CONNECT, AUTH packets are answered and all
        else waits for the CONNACK (MQTT 5.0 3.1.4: nothing but AUTH is processed before)."""
        deferred = self._deferred
        if deferred is None:
            deferred = self._deferred = []
        try:
            while self.state is AUTHENTICATING and self._exchange is not None:
                packet = self.decoder.next_packet()
                if packet is None:
                    break
                if type(packet) is Auth:
                    self._counters.packets_received += 1  # others are counted when handled
                    self._on_auth(packet)
                elif len(deferred) >= MAX_DEFERRED:
                    self._refuse_quietly("too many packets before CONNACK")
                else:
                    deferred.append(packet)
        except MQTTError as exc:
            self._refuse_connect(self._connect or Connect(""), exc.reason_code,
                                 f"protocol error: {exc}")

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
        if reason == ReasonCode.RE_AUTHENTICATE and self.state is CONNECTED \
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
            if self.state is AUTHENTICATING:
                assert self.client is not None
                self.authenticated(self.client, (ReasonCode.BAD_USER_NAME_OR_PASSWORD, why))
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
        if self.state is AUTHENTICATING:
            assert self._connect is not None
            self.auth_reply = reply
            self.host.authorize_will(self, self._connect,
                                     replace(client, username=exchange.username), None)
        elif exchange.username != client.username:
            self.close(ReasonCode.NOT_AUTHORIZED, "re-authenticated as another user")
        else:
            self.send(Auth(ReasonCode.SUCCESS,
                           Properties(authentication_method=self.auth_method,
                                      authentication_data=reply)))
