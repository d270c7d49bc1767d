"""What a node's consumer handled, against a real NATS server (cluster/_handled.py): a copy
JetStream sends again of a message handled here is recognised, one never handled is not, and
what JetStream counts acknowledged is forgotten."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import nats
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from culex.cluster._handled import Handled

from nats_support import NatsServers
from support import WAIT


async def copies_and_floor(url: str) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="H", subjects=["h.>"]))
        await js.add_consumer("H", ConsumerConfig(durable_name="c", ack_policy=AckPolicy.EXPLICIT,
                                                  ack_wait=1.0))
        for n in range(6):
            await js.publish(f"h.{n}", str(n).encode())
        pull = await js.pull_subscribe_bind("c", "H")
        first: list[Any] = []
        while len(first) < 6:
            first += await pull.fetch(6 - len(first), timeout=WAIT)
        handled = Handled(js, "H", "c", every=0.0)
        for msg in first[:5]:  # the sixth is lost on its way, as it were: never handled
            assert not handled.again(msg)
            handled.add(msg)
        for msg in first[:3]:
            await msg.ack_sync()
        assert len(handled) == 5
        # Messages 4 and 5 (acknowledgements lost) and 6 come again after ack_wait.
        again: list[Any] = []
        while len(again) < 3:
            again += await pull.fetch(3 - len(again), timeout=WAIT)
        assert [msg.metadata.num_delivered for msg in again] == [2, 2, 2]
        assert [handled.again(msg) for msg in again] == [True, True, False]
        await handled.prune()
        assert len(handled) == 2  # 1 to 3 acknowledged: forgotten
        for msg in again:
            await msg.ack_sync()
        await handled.prune()
        assert len(handled) == 0
    finally:
        await nc.close()


def test_copies_of_handled_messages_are_known_until_acknowledged(tmp_path: Path) -> None:
    servers = NatsServers(tmp_path).start()
    try:
        asyncio.run(copies_and_floor(servers.urls[0]))
    finally:
        servers.stop()
