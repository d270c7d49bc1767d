"""What a node starting with its NATS cluster asks JetStream again (the cluster is not ready
yet), and what it gives up on at once (a real refusal)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import nats.js.errors
import pytest

from culex.cluster._patience import NO_PEERS_YET, patiently


def refusing(errors: list[Exception]) -> tuple[list[int], Callable[[], Awaitable[str]]]:
    """A JetStream request that fails with ``errors``, one a call, then answers "made"."""
    calls = [0]

    async def make() -> str:
        calls[0] += 1
        if errors:
            raise errors.pop(0)
        return "made"

    return calls, make


def test_no_suitable_peers_yet_is_asked_again() -> None:
    # One of the servers the replicas need is restarting: placement fails until it is back.
    calls, make = refusing([nats.js.errors.BadRequestError(
        code=400, err_code=NO_PEERS_YET, description="no suitable peers for placement")] * 2)
    assert asyncio.run(patiently(make)) == "made"
    assert calls == [3]


def test_a_request_refused_for_another_reason_is_not() -> None:
    calls, make = refusing([nats.js.errors.BadRequestError(
        code=400, err_code=10058, description="stream name already in use")])
    with pytest.raises(nats.js.errors.BadRequestError):
        asyncio.run(patiently(make))
    assert calls == [1]
