"""Opening a listener of any kind: MQTT over TCP (or TLS), or over WebSockets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from ._tcp import MQTTProtocol
from ._tls_stream import TLSStream

if TYPE_CHECKING:
    from ..broker import Host
    from ..config import ListenerConfig
    from ._setup import Gate
    from ._tls import TLSListener

BACKLOG = 4096  # a connection storm (every sensor of a site after a power cut) must not be lost


async def start_listener(host: Host, gate: Gate, listener: ListenerConfig,
                         tls: TLSListener | None) -> tuple[Any, str]:
    """The listening server (``close()``, ``wait_closed()``, ``sockets``), and what it speaks
    as a few words for the log."""
    if listener.protocol == "websockets":
        from ._ws import serve_websockets  # the websockets library only if used

        server = await serve_websockets(host, gate, listener,
                                        tls.server_context if tls else None)
        return server, "secure WebSockets" if tls else "WebSockets"
    loop = asyncio.get_running_loop()
    factory: Callable[[], asyncio.Protocol]
    if tls is None:
        # An asyncio protocol by its methods, not its class (see _tcp).
        factory = lambda: cast(asyncio.Protocol,  # noqa: E731
                               MQTTProtocol(host, gate, listener, loop))
    else:
        factory = lambda: TLSStream(MQTTProtocol(host, gate, listener, loop),  # noqa: E731
                                    tls, host.counters, loop)
    server = await loop.create_server(factory, listener.bind_address, listener.port,
                                      reuse_address=True, backlog=BACKLOG)
    return server, "TLS" if tls else "MQTT"
