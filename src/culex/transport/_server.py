"""Listeners and the process's lifetime: start, serve, shut down on a signal."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING

from ..broker import Broker
from ..config import Config
from ..protocol import ReasonCode
from ._tcp import MQTTProtocol

if TYPE_CHECKING:
    pass

log = logging.getLogger("culex")


class Server:
    """A broker and its listening sockets, on the running event loop."""

    def __init__(self, config: Config) -> None:
        self.config = config
        loop = asyncio.get_running_loop()
        self.broker = Broker(config, loop)
        self._servers: list[asyncio.Server] = []
        self._protocols: set[MQTTProtocol] = set()
        self._stopped = asyncio.Event()

    def admit(self, protocol: MQTTProtocol) -> bool:
        limit = self.config.max_connections
        if 0 <= limit <= len(self._protocols):
            return False
        self._protocols.add(protocol)
        return True

    def release(self, protocol: MQTTProtocol) -> None:
        self._protocols.discard(protocol)

    async def start(self) -> list[tuple[str, int]]:
        """Open every listener; the (host, port) pairs actually bound."""
        loop = asyncio.get_running_loop()
        bound: list[tuple[str, int]] = []
        for listener in self.config.listeners:
            server = await loop.create_server(
                lambda: MQTTProtocol(self.broker, self), listener.bind_address, listener.port,
                reuse_address=True, backlog=4096)
            self._servers.append(server)
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                bound.append((host, port))
                log.info("listening on %s:%d", host, port)
        return bound

    def stop(self) -> None:
        self._stopped.set()

    async def serve_until_stopped(self) -> None:
        await self._stopped.wait()
        await self.shutdown()

    async def shutdown(self) -> None:
        for server in self._servers:
            server.close()
        # v5 clients are told why (MQTT 4.13); wills are not published by a broker going down.
        self.broker.close_all(ReasonCode.SERVER_SHUTTING_DOWN, "server shutting down")
        for protocol in list(self._protocols):
            protocol.close()
        for server in self._servers:
            await server.wait_closed()
        log.info("stopped")


async def serve(config: Config, ready: asyncio.Future[list[tuple[str, int]]] | None = None
                ) -> None:
    server = Server(config)
    try:
        bound = await server.start()
    except OSError as exc:
        raise SystemExit(f"culex: cannot listen: {exc.strerror or exc}") from None
    if ready is not None:
        ready.set_result(bound)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, server.stop)
    await server.serve_until_stopped()


def run(config: Config) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(config))
    else:
        uvloop.run(serve(config))
