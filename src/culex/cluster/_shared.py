"""Shared subscriptions across the cluster: each message to one member of a group of all
nodes' (docs/cluster.md, "Routing").

For QoS 0, each node with members of ``$share/g/f`` has a queue subscription (queue
``share-<g>``) on ``f``'s subjects, on a connection of its own that, unlike the node's main
one, hears the node's own messages; NATS gives each message to one of the queue's
subscribers. For QoS 1 and 2, those nodes pull from one durable consumer of the group, in
small batches so that they take turns; a node with no member left hands a message back.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from ._envelope import Envelope, decode
from ._fetch import batches
from ._handled import Handled
from ._subjects import encode_level, filter_subjects, subject_topic

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

log = logging.getLogger("culex")

BATCH = 8  # small: the nodes of a group take turns
IDLE = 86400.0  # seconds after which JetStream forgets a group's unused consumer

Group = tuple[str, str]  # (filter, share name)


class SharedGroups:
    def __init__(self, q0: str, m: str, stream: str,
                 deliver: Callable[[str, Envelope, Group], bool],
                 stopping: Callable[[], bool], redeliver_after: float) -> None:
        self._q0, self._m, self._stream = q0, m, stream
        self._redeliver_after = redeliver_after  # a member's node gone: its messages again
        self._deliver = deliver  # (topic, envelope, group): whether a member here took it
        self._stopping = stopping
        self.wanted: set[Group] = set()  # the groups with local members
        self._queues: dict[Group, list[Subscription]] = {}
        self.tasks: dict[Group, asyncio.Task[None]] = {}
        self._nc: Any = None
        self._js: Any = None

    def start(self, nc: Any, js: Any) -> None:
        self._nc, self._js = nc, js

    async def close(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()

    async def flush(self) -> None:
        await self._nc.flush()

    async def apply(self) -> None:
        """Follow ``wanted``: subscribe and pull for new groups, stop for gone ones."""
        for key in set(self._queues) - self.wanted:
            for subscription in self._queues.pop(key):
                await subscription.unsubscribe()
            self.tasks.pop(key).cancel()
        for key in sorted(self.wanted - set(self._queues)):
            topic_filter, group = key

            async def on_message(msg: Msg, key: Group = key) -> None:
                self._take(msg, key, self._q0)

            queue = "share-" + encode_level(group)
            self._queues[key] = [await self._nc.subscribe(subject, queue=queue, cb=on_message)
                                 for subject in filter_subjects(self._q0, topic_filter)]
            digest = hashlib.sha256(f"{group}\0{topic_filter}".encode()).hexdigest()[:20]
            await self._js.add_consumer(self._stream, ConsumerConfig(
                durable_name="share-" + digest, ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.NEW, max_ack_pending=10_000,
                ack_wait=self._redeliver_after, inactive_threshold=IDLE,
                filter_subjects=filter_subjects(self._m, topic_filter)))
            self.tasks[key] = asyncio.get_running_loop().create_task(
                self._pull("share-" + digest, key))

    async def _pull(self, consumer: str, key: Group) -> None:
        handled = Handled(self._js, self._stream, consumer, 1.0)
        async for messages in batches(self._nc, self._stream, consumer, BATCH, self._stopping,
                                      "for a shared group"):
            for msg in messages:
                if handled.again(msg):
                    await msg.ack()  # taken here already; its acknowledgement was lost
                elif self._take(msg, key, self._m):
                    handled.add(msg)
                    await msg.ack()
                else:
                    await msg.nak()  # no member here any more: another node's turn
            handled.prune_soon()

    def _take(self, msg: Msg, key: Group, prefix: str) -> bool:
        try:
            envelope = decode(msg.data)
            topic = subject_topic(prefix, msg.subject)
        except ValueError as exc:
            log.warning("cluster: dropped a message on %s: %s", msg.subject, exc)
            return True
        return self._deliver(topic, envelope, key)
