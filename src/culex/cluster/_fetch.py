"""Pulling from a JetStream consumer until told to stop: the loop every consumer of a node
runs (its own, and the shared groups').

Messages are handled as they come. The NATS client's ``fetch`` waits, once a first message has
come, for the rest of its batch until its time-out: a message published after a quiet while
could wait there up to that time-out (a second) before reaching its subscribers. Here one pull
request at a time asks for up to ``size`` messages, for ``EXPIRES`` seconds, through an inbox of
the loop's own, and each message is handed on as soon as it arrives; the next request goes
when this one has brought all it asked for or has ended."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nats.aio.msg import Msg

log = logging.getLogger("culex")

EXPIRES = 1.0  # seconds a pull request waits at the server for messages

# What comes to a pull request's inbox (see ``answer``).
MESSAGE, HEARTBEAT, ENDED, REFUSED = range(4)


def answer(msg: Msg) -> int:
    """What ``msg``, come to a pull request's inbox, is: a message, a heartbeat, the request's
    end (404, 408: expired, or all it asked for came; the next one goes now) or a refusal
    (409: the consumer went, or changed leader; asked again in a while)."""
    headers = msg.headers or {}
    status = headers.get("Status")
    if status is None:
        return MESSAGE
    if status == "100":
        return HEARTBEAT
    if status in ("404", "408"):
        return ENDED
    log.debug("cluster: pulling: %s %s", status, headers.get("Description", ""))
    return REFUSED


class Pulling:
    """A consumer pulled one request at a time: what the pending request may still bring."""

    __slots__ = ("asked", "asked_at")

    def __init__(self) -> None:
        self.asked = 0  # messages the pending request may still bring (0: none pending)
        self.asked_at = 0.0

    def pending(self, now: float, expires: float) -> bool:
        """Whether a request is pending. One whose end has not come a second after its expiry
        never will (NATS reconnected meanwhile): it is forgotten, and the next one may go."""
        if self.asked and now - self.asked_at > expires + 1.0:
            self.asked = 0
        return bool(self.asked)

    def ask(self, count: int, now: float) -> None:
        """A request for ``count`` messages went (or is going) at ``now``."""
        self.asked, self.asked_at = count, now

    def answered(self, msg: Msg, expires: float) -> int:
        """Count ``msg``, come to the request's inbox; what it is (see ``answer``). After a
        refusal, the next request goes once ``asked_at`` is ``expires`` + 1 s old: in a second."""
        what = answer(msg)
        if what == MESSAGE:
            self.asked = max(0, self.asked - 1)
        elif what == ENDED:
            self.asked = 0
        elif what == REFUSED:
            self.asked_at = time.monotonic() - expires
        return what


class _Request(Pulling):
    """The pending pull request and what it brought."""

    __slots__ = ("arrived", "wake")

    def __init__(self) -> None:
        super().__init__()
        self.arrived: list[Msg] = []
        self.wake = asyncio.Event()

    async def on_message(self, msg: Msg) -> None:
        what = self.answered(msg, EXPIRES)
        if what == MESSAGE:
            self.arrived.append(msg)
        if what in (MESSAGE, ENDED):
            self.wake.set()


async def batches(nc: Any, stream: str, consumer: str, size: int,
                  stopping: Callable[[], bool], what: str) -> AsyncIterator[list[Msg]]:
    """What has come since the last batch, each time something comes. A failure to ask (NATS
    away) is logged and tried again half a second later."""
    subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
    request = _Request()
    sub = await nc.subscribe(nc.new_inbox(), cb=request.on_message)
    try:
        while not stopping():
            now = time.monotonic()
            if not request.pending(now, EXPIRES):
                try:
                    await nc.publish(subject, json.dumps(
                        {"batch": size, "expires": int(EXPIRES * 1e9)}).encode(), sub.subject)
                except Exception as exc:
                    log.warning("cluster: pulling %s: %s", what, exc)
                    await asyncio.sleep(0.5)
                    continue
                request.ask(size, now)
            if not request.arrived:
                request.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(request.wake.wait(), EXPIRES + 1.0)
            if request.arrived:
                batch, request.arrived = request.arrived, []
                yield batch
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
