"""Asking JetStream again while it is not ready: a NATS cluster starting with culex elects its
leaders first, and a stream or bucket just made answers once it has one."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import nats.errors
import nats.js.errors

log = logging.getLogger("culex")
T = TypeVar("T")

# Seconds JetStream may take to answer at start: a NATS cluster starting with culex elects
# its leaders first.
SETUP_PATIENCE = 30.0
# JetStream's "no suitable peers for placement": fewer servers are up than the replicas asked
# for (one is restarting); it passes when they are back.
NO_PEERS_YET = 10005


async def patiently(make: Callable[[], Awaitable[T]]) -> T:
    """``make()``, tried again while JetStream is not ready to answer yet."""
    deadline = time.monotonic() + SETUP_PATIENCE
    while True:
        try:
            return await make()
        # No answer yet, or nobody to answer yet (a stream without its leader): both pass.
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError,
                nats.js.errors.ServiceUnavailableError,
                nats.js.errors.NoStreamResponseError) as exc:
            problem: Exception = exc
        except nats.js.errors.BadRequestError as exc:
            if exc.err_code != NO_PEERS_YET:
                raise
            problem = exc
        if time.monotonic() > deadline:
            raise problem
        log.info("cluster: JetStream is not ready (%s); asking again", problem)
        await asyncio.sleep(0.5)
