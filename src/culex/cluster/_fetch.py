"""Pulling from a JetStream consumer until told to stop: the loop every consumer of a node
runs (its own, and the shared groups')."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import nats.errors

log = logging.getLogger("culex")


async def batches(pull: Any, size: int, stopping: Callable[[], bool], what: str
                  ) -> AsyncIterator[list[Any]]:
    """Each batch of up to ``size`` messages as it comes. A quiet second is no error; a
    failure (NATS away) is logged and retried half a second later. The NATS client may take a
    cancellation for a time-out: ``stopping`` ends the loop all the same."""
    while not stopping():
        try:
            messages = await pull.fetch(size, timeout=1.0)
        except (TimeoutError, nats.errors.TimeoutError):
            continue
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("cluster: fetching %s: %s", what, exc)
            await asyncio.sleep(0.5)
            continue
        yield messages
