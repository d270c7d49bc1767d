"""Where and how a client connects: everything a CONNECT and its transport need."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

from ..protocol import MQTT_3_1_1, NO_PROPERTIES, Properties, Will


@dataclass
class TLSOptions:
    cafile: str | None = None
    capath: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    insecure: bool = False  # no check of the server's name against its certificate
    version: str | None = None  # "tlsv1.2" or "tlsv1.3": the minimum

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.cafile, capath=self.capath)
        if self.certfile:
            context.load_cert_chain(self.certfile, self.keyfile)
        if self.insecure:
            context.check_hostname = False
        if self.version:
            context.minimum_version = {"tlsv1.2": ssl.TLSVersion.TLSv1_2,
                                       "tlsv1.3": ssl.TLSVersion.TLSv1_3}[self.version]
        return context


@dataclass
class ClientOptions:
    host: str = "localhost"
    port: int = 1883
    tls: TLSOptions | None = None
    websocket_path: str | None = None  # MQTT over WebSockets at this path ("/mqtt")
    version: int = MQTT_3_1_1
    client_id: str = ""
    clean_start: bool = True
    keep_alive: int = 60
    username: str | None = None
    password: bytes | None = None
    will: Will | None = None
    properties: Properties = NO_PROPERTIES  # of the CONNECT
    disconnect_properties: Properties = NO_PROPERTIES
    connect_timeout: float = 10.0
    bridge: bool = False  # announce a bridge (Mosquitto's try_private; 3.x only)
    extra: dict[str, str] = field(default_factory=dict)  # free for the tools
