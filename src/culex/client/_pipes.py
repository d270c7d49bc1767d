"""The byte pipes a client speaks MQTT through: TCP (or TLS, the event loop's) and WebSockets
(the websockets library, with the "mqtt" sub-protocol: MQTT 5.0 section 6)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    from ._options import ClientOptions


class Receiver(Protocol):
    """What a pipe tells its client."""

    def bytes_received(self, data: bytes) -> None: ...

    def pipe_closed(self, exc: BaseException | None) -> None: ...

    def writing_paused(self, paused: bool) -> None: ...


class Pipe(Protocol):
    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class _Stream(asyncio.Protocol):
    def __init__(self, receiver: Receiver) -> None:
        self._receiver = receiver
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._receiver.bytes_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._receiver.pipe_closed(exc)

    def pause_writing(self) -> None:
        self._receiver.writing_paused(True)

    def resume_writing(self) -> None:
        self._receiver.writing_paused(False)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class _WebSocket:
    """A WebSocket as a pipe: each write one binary message, sent in order by one task."""

    def __init__(self, connection: Any, receiver: Receiver) -> None:
        self._ws = connection
        self._receiver = receiver
        self._outbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._tasks = [asyncio.ensure_future(self._read()), asyncio.ensure_future(self._send())]

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        error: BaseException | None = None
        try:
            async for message in self._ws:
                if isinstance(message, str):
                    raise ValueError("a text frame: MQTT travels in binary frames")
                self._receiver.bytes_received(message)
        except ConnectionClosed:
            pass
        except Exception as exc:
            error = exc
        self._outbox.put_nowait(None)
        self._receiver.pipe_closed(error)

    async def _send(self) -> None:
        from websockets.exceptions import ConnectionClosed

        with contextlib.suppress(ConnectionClosed):
            while (data := await self._outbox.get()) is not None:
                await self._ws.send(data)

    def write(self, data: bytes) -> None:
        self._outbox.put_nowait(data)

    def close(self) -> None:
        self._outbox.put_nowait(None)
        self._tasks.append(asyncio.ensure_future(self._ws.close()))


async def open_pipe(options: ClientOptions, receiver: Receiver) -> Pipe:
    """A connected pipe to the broker; OSError (or TimeoutError) if it cannot be opened."""
    context = options.tls.context() if options.tls is not None else None
    if options.websocket_path is not None:
        from websockets.asyncio.client import connect

        scheme = "wss" if context else "ws"
        host = f"[{options.host}]" if ":" in options.host else options.host
        url = f"{scheme}://{host}:{options.port}{options.websocket_path}"
        connection = await connect(url, subprotocols=["mqtt"],  # type: ignore[list-item]
                                   ssl=context, open_timeout=options.connect_timeout,
                                   compression=None, max_size=None, ping_interval=None)
        return _WebSocket(connection, receiver)
    loop = asyncio.get_running_loop()
    _, stream = await asyncio.wait_for(
        loop.create_connection(lambda: _Stream(receiver), options.host, options.port,
                               ssl=context,
                               server_hostname=options.host if context else None),
        options.connect_timeout)
    return stream
