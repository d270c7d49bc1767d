"""MQTT over WebSockets (MQTT 5.0 section 6, 3.1.1 section 6), with the ``websockets`` library.

Packets travel in binary messages; a message may carry several packets or a part of one
(MQTT-6.0.0-2), so each frame is fed to the connection's decoder as it comes, which also keeps
the packet size limits in force before a large message is complete. What the connection writes
during a loop iteration goes out as one binary message. The sub-protocol is "mqtt" (or
"mqttv3.1", which MQTT 3.1 clients offer); a client offering neither is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from ._setup import open_connection, peer_name
from ._tcp import READ_SLICE, WRITE_BUFFER_HIGH, WRITE_BUFFER_LOW

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection
    from websockets.http11 import Request, Response

    from ..broker import Connection, Host
    from ..config import ListenerConfig
    from ..observability import Counters
    from ._setup import Gate

log = logging.getLogger("culex")

SUBPROTOCOLS = ("mqtt", "mqttv3.1")
# Frames are handed to the decoder one by one: a message is never assembled whole, and no
# single frame may be larger than this.
MAX_FRAME = 1 << 20


class WebSocketSink:
    """A connection's Sink over a WebSocket: writes coalesced per loop iteration, sent in
    order by one task, with the transport's flow control passed on to the connection."""

    def __init__(self, websocket: ServerConnection, counters: Counters) -> None:
        self._ws = websocket
        self._counters = counters
        self._loop = asyncio.get_running_loop()
        self._out: list[bytes | memoryview] = []
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0
        self._flush_handle: asyncio.Handle | None = None
        self._wake = asyncio.Event()
        self._closing = False
        self.conn: Connection | None = None
        self._paused = False
        self.reading = asyncio.Event()  # cleared while the connection holds reading
        self.reading.set()

    def write(self, data: bytes | memoryview) -> None:
        if self._closing:
            return
        self._out.append(data)
        if self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self.flush)

    def flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if not self._out:
            return
        message = b"".join(self._out)
        self._out = []
        self._counters.bytes_sent += len(message)
        self._pending.append(message)
        self._pending_bytes += len(message)
        if self._pending_bytes > WRITE_BUFFER_HIGH and not self._paused and self.conn:
            self._paused = True
            self.conn.pause_writing()  # a slow reader: its messages wait in its session
        self._wake.set()

    def pause_reading(self) -> None:
        self.reading.clear()  # the library's own buffer then fills and pauses the socket

    def resume_reading(self) -> None:
        self.reading.set()

    def attach(self, conn: Connection) -> None:
        """The connection whose flow control this sink drives."""
        self.conn = conn

    @property
    def closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self.flush()
        self._closing = True
        self._wake.set()

    async def run(self) -> None:
        """Send what is pending, in order; close the WebSocket once asked to."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                message = self._pending.popleft()
                self._pending_bytes -= len(message)
                await self._ws.send(message)  # waits while the socket buffer is full
                if self._paused and self._pending_bytes < WRITE_BUFFER_LOW and self.conn:
                    self._paused = False
                    self.conn.resume_writing()
            if self._closing:
                await self._ws.close()
                return


def _require_mqtt(connection: ServerConnection, request: Request) -> Response | None:
    offered = request.headers.get_all("Sec-WebSocket-Protocol")
    names = {name.strip() for header in offered for name in header.split(",")}
    if names.isdisjoint(SUBPROTOCOLS):
        return connection.respond(http.HTTPStatus.BAD_REQUEST,
                                  "MQTT over WebSockets needs the sub-protocol mqtt\n")
    return None


async def serve_websockets(host: Host, gate: Gate, listener: ListenerConfig, ssl: Any) -> Any:
    """Start a WebSocket listener; the websockets Server (close(), wait_closed(), sockets)."""
    from websockets.asyncio.server import serve
    from websockets.exceptions import ConnectionClosed

    # culex logs connections itself; the library's own lines only when something is wrong.
    library_log = logging.getLogger("websockets")
    if library_log.level == logging.NOTSET:
        library_log.setLevel(logging.WARNING)

    async def handle(websocket: ServerConnection) -> None:
        peer = peer_name(websocket.remote_address)
        sink = WebSocketSink(websocket, host.counters)
        peercert = websocket.transport.get_extra_info("peercert") if listener.tls else None
        conn = open_connection(host, gate, sink, peer, listener, peercert)
        if conn is None:
            await websocket.close()
            return
        sink.attach(conn)
        writer = asyncio.create_task(sink.run())
        read_this_turn = 0
        try:
            while not sink.closing:
                async for fragment in websocket.recv_streaming():
                    if isinstance(fragment, str):
                        # MQTT-6.0.0-1: only binary data frames carry MQTT.
                        log.info("refused: connection from %s: a WebSocket text frame", peer)
                        sink.close()
                        break
                    conn.data_received(fragment)
                    sink.flush()
                    if not sink.reading.is_set():
                        await sink.reading.wait()
                    read_this_turn += len(fragment)
                    if read_this_turn >= READ_SLICE:
                        # The library may hold many frames already read: the other
                        # connections get their turn before this one goes on.
                        read_this_turn = 0
                        await asyncio.sleep(0)
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("internal error on connection from %s; closing it", peer)
        finally:
            gate.release(sink)
            conn.connection_lost()
            sink.close()
            with contextlib.suppress(ConnectionClosed):
                await writer

    return await serve(handle, listener.bind_address, listener.port,
                       subprotocols=list(SUBPROTOCOLS),  # type: ignore[arg-type]
                       process_request=_require_mqtt, ssl=ssl,
                       # MQTT has its own keep-alive; MQTT payloads gain little from deflate.
                       ping_interval=None, compression=None,
                       max_size=(None, MAX_FRAME), server_header=None)
