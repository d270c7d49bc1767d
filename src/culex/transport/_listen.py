"""Opening a listener of any kind: MQTT over TCP (or TLS), or over WebSockets."""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING, Any

from ._tcp import MQTTProtocol
from ._tls import HANDSHAKE_TIMEOUT

if TYPE_CHECKING:
    from ..broker import Host
    from ..config import ListenerConfig
    from ._setup import Gate

BACKLOG = 4096  # a connection storm (every sensor of a site after a power cut) must not be lost


async def start_listener(host: Host, gate: Gate, listener: ListenerConfig,
                         context: ssl.SSLContext | None) -> tuple[Any, str]:
    """The listening server (``close()``, ``wait_closed()``, ``sockets``), and what it speaks
    as a few words for the log."""
    if listener.protocol == "websockets":
        from ._ws import serve_websockets  # the websockets library only if used

        server = await serve_websockets(host, gate, listener, context)
        return server, "secure WebSockets" if context else "WebSockets"
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: MQTTProtocol(host, gate, listener, loop),
        listener.bind_address, listener.port, reuse_address=True, backlog=BACKLOG,
        ssl=context, ssl_handshake_timeout=HANDSHAKE_TIMEOUT if context else None)
    return server, "TLS" if context else "MQTT"
