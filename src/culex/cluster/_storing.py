"""QoS 1/2 messages into JetStream: each publisher's ticket is done when JetStream has stored
its message (with the configured replicas), and a publisher whose message could not be stored
is disconnected, to send it again (see _node, a mixin of whose class this is)."""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from typing import TYPE_CHECKING, Any

from ..protocol import ReasonCode

if TYPE_CHECKING:
    from ..broker._peers import PeerHolder
    from ._tickets import Tickets

log = logging.getLogger("culex")

ACK_TIMEOUT = 10.0  # seconds JetStream has to store a message before its publisher is told


class Storing:
    if TYPE_CHECKING:
        _js: Any
        _r: str
        _stream: str
        _retained_stream: str
        _stopping: bool
        _tickets: Tickets
        _outbox: list[tuple[str, bytes, PeerHolder | None, int, float | None, str | None]]
        _flushing: bool
        _flushed: list[asyncio.Future[None]]
        _pending_acks: dict[asyncio.Future[Any], tuple[PeerHolder | None, int, float]]
        _received: dict[tuple[PeerHolder, int], int]
        _retained_seq: int
        _retained_waiting: list[tuple[int, PeerHolder, int]]

    async def stored_so_far(self) -> None:
        """Until JetStream has answered for every message forwarded so far: a session record
        that says a QoS 2 message was received is written only once the message is stored
        (else a node's death in between would lose it: the client, told PUBREC by the next
        node, would not send it again)."""
        if self._flushing or self._outbox:
            waiter = asyncio.get_running_loop().create_future()
            self._flushed.append(waiter)
            await waiter
        pending = list(self._pending_acks)
        if pending:
            await asyncio.wait(pending, timeout=ACK_TIMEOUT)

    async def _publish_stored(self, subject: str, data: bytes, publisher: PeerHolder | None,
                              ticket: int, ttl: float | None, msg_id: str | None) -> None:
        retained = subject.startswith(self._r)
        stream = self._retained_stream if retained else self._stream
        try:
            future = await self._js.publish_async(
                subject, data, stream=stream,
                msg_ttl=None if ttl is None else max(1, math.ceil(ttl)),
                headers=None if msg_id is None else {"Nats-Msg-Id": msg_id})
        except Exception as exc:
            self._not_stored(publisher, ticket, exc)
            return
        self._pending_acks[future] = (publisher, ticket, time.monotonic())
        future.add_done_callback(functools.partial(self._stored, retained))

    def _stored(self, retained: bool, future: asyncio.Future[Any]) -> None:
        """JetStream answered (or the answer timed out): the publisher's ticket is done, for
        a retained message once this node holds it too (read your own writes)."""
        publisher, ticket, _ = self._pending_acks.pop(future, (None, 0, 0.0))
        exc = None if future.cancelled() else future.exception()
        if exc is not None or future.cancelled():
            self._not_stored(publisher, ticket, exc)
        elif publisher is not None and ticket:
            self._received.pop((publisher, ticket), None)
            seq = future.result().seq
            if not retained or seq <= self._retained_seq:
                self._tickets.done(publisher, ticket)
            else:
                self._retained_waiting.append((seq, publisher, ticket))

    def _not_stored(self, publisher: PeerHolder | None, ticket: int,
                    exc: BaseException | None) -> None:
        """JetStream did not take a QoS 1/2 message: its publisher is not told it is safe.
        It is disconnected instead (its acknowledgement is never sent), so that it sends the
        message again when it comes back."""
        log.warning("cluster: JetStream did not store a message (%s); its publisher is "
                    "disconnected to send it again", exc or "timeout")
        if publisher is not None and ticket:
            packet_id = self._received.pop((publisher, ticket), 0)
            if packet_id:
                publisher.not_received(packet_id)  # else its resent PUBLISH would be dropped
            publisher.close(ReasonCode.SERVER_BUSY, "the cluster could not store the message")

    async def _watch(self) -> None:
        """Publishes JetStream never answered (a lost NATS server mid-request) time out."""
        while not self._stopping:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for future, (_, _, since) in list(self._pending_acks.items()):
                if now - since > ACK_TIMEOUT and not future.done():
                    future.cancel()

