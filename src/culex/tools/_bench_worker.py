"""One process of ``culex bench``: its share of the clients on one asyncio loop, and a report
to the parent every second (counts, a latency histogram, its own CPU time).

Latencies are kept in logarithmic buckets (5% wide), so that reports stay small whatever the
rate and merge by addition; percentiles are read from the merged buckets.
"""

from __future__ import annotations

import asyncio
import math
import os
import struct
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..client import Client, ClientOptions, ConnectRefused
from ..protocol import Publish, SubscriptionRequest

STAMP = struct.Struct(">Q")  # the sending time (CLOCK_MONOTONIC, ns) heading a payload
BUCKETS_PER_E = 20  # bucket width: e^(1/20), 5%


def bucket_of(microseconds: float) -> int:
    return int(math.log(max(microseconds, 1.0)) * BUCKETS_PER_E)


def bucket_value(bucket: int) -> float:
    """Microseconds at the middle of a bucket."""
    return math.exp((bucket + 0.5) / BUCKETS_PER_E)


@dataclass
class Plan:
    """What the parent asks of a worker."""

    mode: str  # conn, pub, sub, pubsub
    options: ClientOptions
    worker: int
    workers: int
    clients: int  # in all
    subscribers: int  # pubsub: subscribing clients in all (the others publish)
    first: int  # number of the first client (-n)
    prefix: str
    connect_interval: float  # seconds between connections, all workers together
    publish_interval: float  # seconds between messages of one client (0: flat out)
    topic: str
    sub_topic: str
    size: int
    qos: int
    retain: bool
    limit: int  # messages in all (0: none)
    inflight: int
    duration: float  # seconds (0: until the limit, or interrupted)


@dataclass
class Stats:
    connected: int = 0
    subscribed: int = 0
    failed: int = 0
    published: int = 0  # sent (QoS 0) or acknowledged (QoS 1, 2)
    received: int = 0
    refused: int = 0  # messages the broker refused (reason code >= 0x80)
    latency: Counter[int] = field(default_factory=Counter)  # end to end, or CONNACK time
    first: int = 0  # monotonic ns of the first message sent or received
    last: int = 0  # and of the last one
    cpu: float = 0.0
    done: bool = False

    def take(self) -> dict[str, Any]:
        """The figures since the last take (counts) and now (connected)."""
        report = {"connected": self.connected, "subscribed": self.subscribed,
                  "failed": self.failed,
                  "published": self.published, "received": self.received,
                  "refused": self.refused, "latency": dict(self.latency), "done": self.done,
                  "first": self.first, "last": self.last}
        self.failed = self.published = self.received = self.refused = 0
        self.latency = Counter()
        return report


def run(plan: Plan, reports: Any, go: Any, halt: Any) -> None:
    """The worker's main: run the plan, reporting to ``reports`` (a queue) every second;
    publishers wait for ``go``, everything stops at ``halt`` (multiprocessing Events)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(_main(plan, reports, go, halt))
    else:
        uvloop.run(_main(plan, reports, go, halt))


async def _main(plan: Plan, reports: Any, go: Any, halt: Any) -> None:
    stats = Stats()
    load = _Load(plan, stats, go)
    stop = asyncio.Event()
    task = asyncio.ensure_future(load.run(stop))
    cpu = time.process_time()
    deadline = time.monotonic() + plan.duration if plan.duration else math.inf
    while not task.done():
        await asyncio.wait([task], timeout=1.0)
        if time.monotonic() >= deadline or halt.is_set():
            stop.set()
        now_cpu = time.process_time()
        report = stats.take()
        report["cpu"], cpu = now_cpu - cpu, now_cpu
        reports.put((plan.worker, report))
    stats.done = True
    reports.put((plan.worker, stats.take() | {"cpu": 0.0}))


class _Load:
    def __init__(self, plan: Plan, stats: Stats, go: Any) -> None:
        self.plan = plan
        self.stats = stats
        self.go = go  # an Event shared by the processes
        self._going: asyncio.Future[Any] | None = None
        self.clients: list[Client] = []
        self.sent = 0  # messages started by this worker, against its share of the limit
        share, extra = divmod(plan.limit, plan.workers)
        self.limit = share + (plan.worker < extra) if plan.limit else 0

    async def run(self, stop: asyncio.Event) -> None:
        """Connect this worker's clients, spaced as asked, and let them work until the limit
        is reached (pub, pubsub) or the run is stopped (any mode)."""
        plan = self.plan
        start = time.monotonic()
        jobs = []
        for number in range(plan.first + plan.worker, plan.first + plan.clients, plan.workers):
            index = number - plan.first
            at = start + index * plan.connect_interval
            jobs.append(asyncio.ensure_future(self._client(number, index, at, stop)))
        stopper = asyncio.ensure_future(stop.wait())
        if plan.mode in ("conn", "sub"):
            await stopper  # the clients hold their connections until then
        else:
            everyone = asyncio.ensure_future(asyncio.wait(jobs))
            await asyncio.wait([everyone, stopper], return_when=asyncio.FIRST_COMPLETED)
            everyone.cancel()
            if plan.mode == "pubsub":
                await self._settle()
        stop.set()
        stopper.cancel()
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        await asyncio.gather(*(client.disconnect() for client in self.clients),
                             return_exceptions=True)

    async def _settle(self, quiet: float = 1.0, longest: float = 10.0) -> None:
        """Let messages still on their way arrive: until none came for ``quiet`` seconds."""
        end = time.monotonic() + longest
        last = -1
        while time.monotonic() < end:
            seen = self.stats.received + len(self.stats.latency)
            if seen == last:
                return
            last = seen
            await asyncio.sleep(quiet)

    async def _client(self, number: int, index: int, at: float, stop: asyncio.Event) -> None:
        plan = self.plan
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        if stop.is_set():
            return
        client_id = f"{plan.prefix}{number}"
        options = _copy(plan.options, client_id)
        subscriber = plan.mode == "sub" or (plan.mode == "pubsub" and index < plan.subscribers)
        client = Client(options, on_message=self._received if subscriber else None)
        begun = time.monotonic()
        try:
            await client.connect(receive_maximum=max(1, plan.inflight))
        except (TimeoutError, OSError, ConnectRefused):
            self.stats.failed += 1
            return
        if plan.mode == "conn":
            self.stats.latency[bucket_of((time.monotonic() - begun) * 1e6)] += 1
        self.stats.connected += 1
        self.clients.append(client)
        if subscriber:
            topic = _expand(plan.sub_topic, number, client_id)
            await client.subscribe([SubscriptionRequest(topic, plan.qos)])
            self.stats.subscribed += 1
        elif plan.mode in ("pub", "pubsub"):
            # pubsub: publishers start once every subscriber of every worker is subscribed.
            if self._going is None:
                self._going = asyncio.get_running_loop().run_in_executor(None, self.go.wait)
            await asyncio.shield(self._going)
            await self._publish(client, _expand(plan.topic, number, client_id), stop)

    async def _publish(self, client: Client, topic: str, stop: asyncio.Event) -> None:
        plan = self.plan
        qos, retain, interval = plan.qos, plan.retain, plan.publish_interval
        filler = os.urandom(max(0, plan.size - STAMP.size))
        window = asyncio.Semaphore(max(1, plan.inflight))
        pending: set[asyncio.Future[int]] = set()
        next_at = time.monotonic()
        while not stop.is_set() and (not self.limit or self.sent < self.limit):
            self.sent += 1
            now = time.monotonic_ns()
            stats = self.stats
            stats.last = now
            if not stats.first:
                stats.first = now
            payload = STAMP.pack(now) + filler
            if not qos:
                await client.publish(topic, payload, 0, retain)
                self.stats.published += 1
            else:
                await window.acquire()
                future = asyncio.ensure_future(client.publish(topic, payload, qos, retain))
                pending.add(future)
                future.add_done_callback(lambda f: self._acked(f, window, pending))
            if interval:
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            elif not qos and self.sent % 64 == 0:
                await asyncio.sleep(0)  # the other clients of this worker get their turn
        if pending:
            await asyncio.wait(pending)

    def _acked(self, future: asyncio.Future[int], window: asyncio.Semaphore,
               pending: set[asyncio.Future[int]]) -> None:
        pending.discard(future)
        window.release()
        if future.cancelled() or future.exception() is not None:
            return
        if future.result() >= 0x80:
            self.stats.refused += 1
        else:
            self.stats.published += 1

    def _received(self, message: Publish) -> None:
        stats = self.stats
        stats.received += 1
        now = stats.last = time.monotonic_ns()
        if not stats.first:
            stats.first = now
        if self.plan.mode == "pubsub" and len(message.payload) >= STAMP.size:
            (sent,) = STAMP.unpack_from(message.payload)
            stats.latency[bucket_of((now - sent) / 1000)] += 1


def _expand(template: str, number: int, client_id: str) -> str:
    return template.replace("%i", str(number)).replace("%c", client_id)


def _copy(options: ClientOptions, client_id: str) -> ClientOptions:
    from dataclasses import replace

    return replace(options, client_id=client_id)
