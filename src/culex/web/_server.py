"""HTTP/1.1 listeners (metrics, health), with h11 parsing and an asyncio.Protocol around it.

h11 is a sans-IO HTTP/1.1 state machine, the same design as culex's MQTT core: bytes in, events
out, no sockets. This module feeds it, hands each complete request to the application as a
task (so that a password check off the event loop does not hold the loop), writes the answer,
and keeps the connection for the next request when the client wants it. HTTP serves people and
scrapers, a few requests a minute: it is kept small and bounded rather than fast. A request's
head and body are capped, an idle connection closes after IDLE_TIMEOUT, and a listener holds
MAX_CONNECTIONS at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import h11

from ..transport import peer_name

log = logging.getLogger("culex")

MAX_BODY = 64 << 10
MAX_HEAD = 16 << 10
IDLE_TIMEOUT = 30.0  # seconds without a complete request, or between requests
MAX_CONNECTIONS = 64  # per HTTP listener


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes
    peer: str
    tls: bool


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    # A body sent as it comes (server-sent events), chunk by chunk, until it ends or the
    # client goes away; ``body`` is then unused.
    stream: AsyncIterator[bytes] | None = None


Handler = Callable[[Request], Awaitable[Response]]


class HTTPServerProtocol(asyncio.Protocol):
    """One HTTP connection: one request at a time, answered in order."""

    def __init__(self, handler: Handler, open_connections: set[HTTPServerProtocol],
                 tls: bool, loop: asyncio.AbstractEventLoop) -> None:
        self._handler = handler
        self._open = open_connections
        self._tls = tls
        self._loop = loop
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self._transport: asyncio.Transport | None = None
        self._peer = "?"
        self._request: Request | None = None
        self._body: list[bytes] = []
        self._body_size = 0
        self._task: asyncio.Task[None] | None = None
        self._idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._peer = peer_name(transport.get_extra_info("peername"))
        if len(self._open) >= MAX_CONNECTIONS:
            self._transport.abort()
            return
        self._open.add(self)
        self._arm_idle()

    def data_received(self, data: bytes) -> None:
        self._h11.receive_data(data)
        self._process()

    def eof_received(self) -> bool | None:
        self._h11.receive_data(b"")
        self._process()
        return True  # a response in progress still goes out; _process closes when done

    def connection_lost(self, exc: Exception | None) -> None:
        self._open.discard(self)
        if self._idle is not None:
            self._idle.cancel()
        if self._task is not None:
            self._task.cancel()
        self._transport = None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _arm_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self._idle = self._loop.call_later(IDLE_TIMEOUT, self.close)

    def _process(self) -> None:
        while self._task is None and self._transport is not None:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                self._refuse(exc.error_status_hint, str(exc))
                return
            if event is h11.NEED_DATA:
                if self._h11.their_state is h11.DONE:
                    self._transport.pause_reading()  # until the answer is out
                return
            if event is h11.PAUSED:
                return
            if isinstance(event, h11.ConnectionClosed):
                self.close()
                return
            if isinstance(event, h11.Request):
                self._begin(event)
            elif isinstance(event, h11.Data):
                self._body_size += len(event.data)
                if self._body_size > MAX_BODY:
                    self._refuse(413, "request body too large")
                    return
                self._body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                request = self._request
                assert request is not None
                request.body = b"".join(self._body)
                self._body = []
                if self._idle is not None:
                    self._idle.cancel()
                self._task = self._loop.create_task(self._answer(request))

    def _begin(self, event: h11.Request) -> None:
        target = event.target.decode("ascii", "replace")
        parts = urlsplit(target)
        self._request = Request(
            method=event.method.decode("ascii", "replace"), path=parts.path,
            query=parse_qs(parts.query),
            headers={name.decode("ascii", "replace").lower(): value.decode("latin-1")
                     for name, value in event.headers},
            body=b"", peer=self._peer, tls=self._tls)
        self._body_size = 0

    async def _answer(self, request: Request) -> None:
        try:
            response = await self._handler(request)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("internal error answering %s %s from %s", request.method,
                          request.path, request.peer)
            response = Response(500, b"internal error\n")
        if response.stream is not None:
            await self._send_stream(response)
        else:
            self._send(response)
        self._task = None
        if self._transport is None:
            return
        if self._h11.our_state is h11.MUST_CLOSE or self._h11.their_state is h11.MUST_CLOSE:
            self.close()
            return
        try:
            self._h11.start_next_cycle()
        except h11.LocalProtocolError:
            self.close()
            return
        self._arm_idle()
        self._transport.resume_reading()
        self._process()

    def _send(self, response: Response) -> None:
        if self._transport is None:
            return
        headers = [("content-type", response.content_type),
                   ("content-length", str(len(response.body))),
                   ("cache-control", "no-store"),
                   ("x-content-type-options", "nosniff"), *response.headers]
        out = self._h11.send(h11.Response(status_code=response.status, headers=headers))
        body = self._h11.send(h11.Data(data=response.body)) if response.body else b""
        end = self._h11.send(h11.EndOfMessage())
        self._transport.write(b"".join(part or b"" for part in (out, body, end)))

    async def _send_stream(self, response: Response) -> None:
        """Headers now, then each chunk as the stream yields it (chunked encoding), while the
        client keeps the connection; a stream ends the connection when it ends."""
        assert response.stream is not None and self._transport is not None
        headers = [("content-type", response.content_type), ("cache-control", "no-store"),
                   ("x-content-type-options", "nosniff"), ("connection", "close"),
                   *response.headers]
        self._transport.write(self._h11.send(h11.Response(status_code=response.status,
                                                          headers=headers)) or b"")
        try:
            async for chunk in response.stream:
                if self._transport is None:
                    return
                self._transport.write(self._h11.send(h11.Data(data=chunk)) or b"")
            if self._transport is not None:
                self._transport.write(self._h11.send(h11.EndOfMessage()) or b"")
        finally:
            aclose = getattr(response.stream, "aclose", None)
            if aclose is not None:
                await aclose()

    def _refuse(self, status: int, why: str) -> None:
        log.info("HTTP request from %s refused: %s", self._peer, why)
        if self._h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            with contextlib.suppress(h11.LocalProtocolError):
                self._send(Response(status, why.encode() + b"\n",
                                    headers=[("connection", "close")]))
        self.close()


async def start_http_listener(handler: Handler, host: str, port: int, tls_stream: Any,
                              ) -> tuple[Any, set[HTTPServerProtocol]]:
    """The listening server and its open connections. ``tls_stream``: None, or a function
    wrapping a protocol in TLS."""
    loop = asyncio.get_running_loop()
    connections: set[HTTPServerProtocol] = set()

    def factory() -> asyncio.Protocol:
        protocol = HTTPServerProtocol(handler, connections, tls_stream is not None, loop)
        return protocol if tls_stream is None else cast(asyncio.Protocol, tls_stream(protocol))

    server = await loop.create_server(factory, host, port, reuse_address=True)
    return server, connections
