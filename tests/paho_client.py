"""A paho-mqtt 2.x client with blocking helpers that wait on events, never on sleeps."""

from __future__ import annotations

import queue
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from support import WAIT

VERSIONS = {"3.1": mqtt.MQTTv31, "3.1.1": mqtt.MQTTv311, "5": mqtt.MQTTv5}


class Paho:
    def __init__(self, port: int, version: int = mqtt.MQTTv311, client_id: str = "",
                 clean: bool = True, username: str | None = None, password: str | None = None,
                 ca_certs: str | None = None, certfile: str | None = None,
                 keyfile: str | None = None, transport: str = "tcp") -> None:
        self.port = port
        self.version = version
        self.clean = clean
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=version, reconnect_on_failure=False,
                                  clean_session=None if version == mqtt.MQTTv5 else clean,
                                  transport=transport)  # type: ignore[arg-type]
        if username is not None:
            self.client.username_pw_set(username, password)
        if ca_certs is not None:
            self.client.tls_set(ca_certs=ca_certs, certfile=certfile, keyfile=keyfile)
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.subscribed = threading.Event()
        self.connect_result: Any = None
        self.session_present: bool | None = None
        self.connack_properties: Any = None
        self.disconnect_reason: Any = None
        self.granted: list[Any] = []
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    props: Any) -> None:
        self.connect_result = reason
        self.session_present = flags.session_present
        self.connack_properties = props
        self.connected.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                       props: Any) -> None:
        self.disconnect_reason = reason
        self.disconnected.set()

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any,
                      props: Any) -> None:
        self.granted = list(reasons)
        self.subscribed.set()

    def connect(self, session_expiry: int | None = None, keepalive: int = 60) -> Paho:
        kwargs: dict[str, Any] = {}
        if self.version == mqtt.MQTTv5:
            kwargs["clean_start"] = self.clean
            if session_expiry is not None:
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = session_expiry
                kwargs["properties"] = props
        self.client.connect("127.0.0.1", self.port, keepalive=keepalive, **kwargs)
        self.client.loop_start()
        assert self.connected.wait(WAIT), "no CONNACK"
        return self

    def subscribe(self, topic: str, qos: int = 0) -> list[Any]:
        self.subscribed.clear()
        result, _ = self.client.subscribe(topic, qos)
        assert result == mqtt.MQTT_ERR_SUCCESS
        assert self.subscribed.wait(WAIT), "no SUBACK"
        return self.granted

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos, retain)
        info.wait_for_publish(WAIT)
        assert info.is_published()

    def get(self, timeout: float = WAIT) -> mqtt.MQTTMessage:
        return self.messages.get(timeout=timeout)

    def disconnect(self) -> None:
        self.client.disconnect()
        self.disconnected.wait(WAIT)
        self.client.loop_stop()

    def stop(self) -> None:
        self.client.loop_stop()
