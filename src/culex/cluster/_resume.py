"""Resuming a cluster session: a client connecting to this node has its session brought here
from the node holding it (asked to let go), taken from a dead one, or ended for a clean start;
the sessions of a node that died or stopped are taken by a survivor, so that their wills and
expiry go on (see _sessions, a mixin of whose class this is; docs/cluster.md, Sessions)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import nats.js.errors

from ..protocol import ReasonCode
from ._records import consumer_name, expired, read_snapshot, subjects, threshold
from ._subjects import decode_level, encode_level

if TYPE_CHECKING:
    from nats.aio.msg import Msg

    from ..broker import Broker, Message
    from ..clusterconfig import ClusterConfig

log = logging.getLogger("culex")

RELEASE_WAIT = 2.0  # seconds a node has to let go of a session another one resumes
# Seconds the holder waits for the hand-back before it leaves a request unanswered: within
# RELEASE_WAIT. A stopped feed's last pull request may take up to a second to end (see
# _feeding); more than that means a node under load, and the next request finds it further on.
HAND_BACK_WAIT = RELEASE_WAIT - 0.25
RELEASE_ATTEMPTS = 3


class Resuming:
    if TYPE_CHECKING:
        _config: ClusterConfig
        _node: str
        _m: str
        _stream: str
        _js: Any
        _nc: Any
        _kv: Any
        _broker: Broker | None
        _loop: asyncio.AbstractEventLoop | None
        _leaving: bool
        _batch: int
        _revisions: dict[str, int]
        _inbound: dict[str, list[Any]]
        _tasks: set[asyncio.Task[Any]]
        _ending: dict[str, asyncio.Task[None]]
        _to_message: Callable[[str, bytes], Message | None]
        _alive: Callable[[], list[str]]

        async def _consumer(self, client_id: str, filters: list[str],
                            threshold: int) -> None: ...

        async def _written_through(self, batch: int) -> None: ...

        async def _handed_back(self, feeds: list[asyncio.Task[None]],
                               timeout: float) -> bool: ...

    def admit_then(self, client_id: str, clean_start: bool,
                   then: Callable[[tuple[int, str] | None], None]) -> None:
        """``admit``, then ``then`` with its answer (the broker's Peers.admit)."""

        async def bring() -> None:
            try:
                refusal = await self.admit(client_id, clean_start)
            except Exception as exc:  # NATS away, or a record culex did not write
                log.warning("cluster: cannot look for the session of %r: %s", client_id, exc)
                refusal = ReasonCode.SERVER_UNAVAILABLE, "the cluster cannot be asked"
            then(refusal)

        self._background(bring())

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in a task of its own, kept until done (a stop waits for it)."""
        assert self._loop is not None
        task = self._loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def serve_releases(self) -> None:
        """Answer the other nodes' requests to let go of a session (``_ask_release``)."""

        async def answer(msg: Msg) -> None:
            try:
                if not await self.release(msg.data.decode()):
                    # Not answered: the other node asks again (and this one goes on waiting
                    # for the hand-back), or in the end takes the session anyway.
                    return
            except Exception as exc:
                log.warning("cluster: letting go of a session: %s", exc)
            with contextlib.suppress(Exception):
                await msg.respond(b"ok")

        async def on_request(msg: Msg) -> None:
            # Each request in a task of its own: NATS hands a subscription its messages one
            # at a time, and a release waits for its session's hand-back (up to a second):
            # clients moving to another node together must not wait for one another.
            self._background(answer(msg))

        await self._nc.subscribe(f"{self._config.prefix}.release.{encode_level(self._node)}",
                                 cb=on_request)

    async def admit(self, client_id: str, clean_start: bool) -> tuple[int, str] | None:
        """Bring ``client_id``'s session here from wherever it is (or end it, for a clean
        start): None, or why the client is refused."""
        broker = self._broker
        assert broker is not None
        if client_id in broker.sessions:
            return None  # held here: the broker takes it over as on a single node
        key = encode_level(client_id)
        gone: set[str] = set()
        for _ in range(5):
            try:
                entry = await self._kv.get(key)
            except nats.js.errors.KeyNotFoundError:
                return None  # no session anywhere
            record = json.loads(entry.value)
            holder = record.get("holder")
            if holder and holder != self._node and holder not in gone \
                    and not record.get("left"):
                if not await self._ask_release(holder, client_id):
                    gone.add(holder)  # dead, or not answering: taken from it
                continue  # read the record again: its holder wrote it last
            try:
                if clean_start or expired(record):
                    await self._forget(client_id, entry.revision)
                    return None
                await self._take(client_id, key, entry.revision, record)
            except (nats.js.errors.KeyWrongLastSequenceError, nats.js.errors.APIError):
                continue  # another node raced this one: read again
            return None
        return ReasonCode.SERVER_UNAVAILABLE, "the session is being taken by another node"

    async def _take(self, client_id: str, key: str, revision: int,
                    record: dict[str, Any]) -> None:
        """Take the session of ``record`` (compare-and-set on ``revision``) and rebuild it
        here, offline: its client connects now, or its timers (will, expiry) run here."""
        broker = self._broker
        assert broker is not None
        record["holder"] = self._node
        record["left"] = False
        self._revisions[client_id] = await self._kv.update(key, json.dumps(record).encode(),
                                                           last=revision)
        self._inbound[client_id] = [record.get("epoch") or secrets.token_hex(6),
                                    int(record.get("q2in") or 0)]
        # Its queue, as it was (made again if JetStream dropped it, unused too long).
        await self._consumer(client_id, subjects(self._m, record["subs"]),
                             threshold(int(record["expiry"])))
        broker.restore(await read_snapshot(self._js, self._stream, self._to_message,
                                           client_id, record), time.time())

    def adopt_soon(self, node: str) -> None:
        """``node`` died or stopped: its sessions are taken by the survivors (one each), so
        that their wills and expiry still happen."""
        if self._loop is not None and not self._leaving:
            task = self._loop.create_task(self._adopt(node))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _adopt(self, node: str) -> None:
        broker = self._broker
        assert broker is not None
        try:
            keys = await self._kv.keys()
        except nats.js.errors.NoKeysError:
            return
        taken = 0
        for key in keys:
            try:
                entry = await self._kv.get(key)
                record = json.loads(entry.value)
                client_id = decode_level(key)
                if record.get("holder") != node or client_id in broker.sessions:
                    continue
                if expired(record):
                    await self._forget(client_id, entry.revision)
                else:
                    await self._take(client_id, key, entry.revision, record)
                    taken += 1
            except Exception:  # deleted, or taken by another node first: theirs
                continue
        if taken:
            log.info("cluster: took %d sessions of node %s", taken, node)

    async def _ask_release(self, holder: str, client_id: str) -> bool:
        """Ask the node holding the session to let it go: whether it did (False: it is dead,
        or does not answer, and the session is taken from it)."""
        subject = f"{self._config.prefix}.release.{encode_level(holder)}"
        for _ in range(RELEASE_ATTEMPTS):
            if holder not in self._alive():
                return False
            try:
                await self._nc.request(subject, client_id.encode(), timeout=RELEASE_WAIT)
                return True
            except Exception as exc:  # no answer: dying, or busy; it is asked again
                log.debug("cluster: node %s did not let go of %r: %s", holder, client_id, exc)
        log.warning("cluster: node %s does not let go of the session of %r; taking it",
                    holder, client_id)
        return False

    async def release(self, client_id: str) -> bool:
        """Another node resumes ``client_id``'s session: let go of it here (its connection
        closed, its record written for the other node, what its feed held handed back to
        JetStream); whether that was done within HAND_BACK_WAIT, for the answer."""
        broker = self._broker
        assert broker is not None
        start = time.monotonic()
        broker.let_go(client_id)
        # Its feed, stopped now or before (a retried request finds it too, until its
        # hand-back is over): the other node must not pull the session's queue before what
        # this one held is back in it, or newer messages would overtake them.
        ending = self._ending.get(client_id)
        await self._written_through(self._batch)  # the batch gathering now has its record
        return await self._handed_back([ending] if ending is not None else [],
                                       HAND_BACK_WAIT - (time.monotonic() - start))

    async def _forget(self, client_id: str, revision: int | None) -> None:
        """End the session in the cluster: its consumer, and its record if ``revision`` is
        still its last (compare-and-set)."""
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await self._js.delete_consumer(self._stream, consumer_name(client_id))
        if revision is not None:
            await self._kv.delete(encode_level(client_id), last=revision)

