"""Which connection, on which node, owns each client id: MQTT-3.1.4-3 across the cluster.

A key-value bucket holds, per client id, the node and a token naming the connection that last
claimed it. A claim is a compare-and-set on the key's last revision, so claims are put in one
order, and the last one wins (a connection's CONNACK waits for its claim, so a client that
connects after another's CONNACK wins over it): every node watches the bucket, and a node
whose connection's claim is older than the newest one closes that connection (MQTT 5:
DISCONNECT 0x8E, session taken over). Two connections racing on two nodes leave exactly one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

import nats.js.errors

from ._subjects import decode_level, encode_level
from ._tickets import Tickets

log = logging.getLogger("culex")

CLAIM_ATTEMPTS = 12  # about 8 s of retries: long enough for JetStream to elect a leader


class Claim:
    __slots__ = ("conn", "revision", "rival", "ticket", "token", "will")

    def __init__(self, conn: Any, ticket: int, will: dict[str, Any] | None) -> None:
        self.conn = conn
        self.will = will  # kept with the claim: if this node dies, another publishes it
        self.ticket = ticket  # its CONNACK waits for the claim: a later connection wins
        self.token = secrets.token_hex(8)
        self.revision = 0  # of this claim in the bucket, once written (0: not yet)
        self.rival = 0  # the newest revision of another connection's claim seen meanwhile


class Owners:
    def __init__(self, node: str, tickets: Tickets, close: Callable[[Any, bool], None]) -> None:
        self._node = node
        self._tickets = tickets
        # Hang up a local connection: another one took its client id (True), or the cluster
        # could not be asked (False).
        self._close = close
        self._kv: Any = None
        self._claims: dict[str, Claim] = {}  # local connections' claims, by client id
        # Every claim in the cluster, as the bucket says: key -> (revision, node, will).
        self.known: dict[str, tuple[int, str, dict[str, Any] | None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._watcher: Any = None

    async def start(self, kv: Any) -> None:
        self._kv = kv
        self._watcher = await kv.watchall(include_history=False)
        task = asyncio.get_running_loop().create_task(self._watch())
        self._tasks.add(task)

    async def stop(self) -> None:
        # The releases of the connections just closed go out first (else other nodes would
        # take this node's clients for a dead node's and publish their wills).
        pending = [task for task in self._tasks if not task.done()]
        if pending:
            await asyncio.wait(pending, timeout=2.0)
        for task in list(self._tasks):
            task.cancel()
        if self._watcher is not None:
            with contextlib.suppress(Exception):  # the connection may be gone already
                await self._watcher.stop()

    def connected(self, client_id: str, conn: Any, will: dict[str, Any] | None) -> None:
        """A local connection was accepted for ``client_id``: claim it for the cluster (with
        its will, as ``Wills.record`` writes it)."""
        claim = Claim(conn, self._tickets.issue(conn), will)
        self._claims[client_id] = claim
        self._spawn(self._claim(client_id, claim))

    def disconnected(self, client_id: str, conn: Any) -> None:
        claim = self._claims.get(client_id)
        if claim is None or claim.conn is not conn:
            return
        del self._claims[client_id]
        if claim.revision:
            self._spawn(self._release(client_id, claim))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _claim(self, client_id: str, claim: Claim) -> None:
        key = encode_level(client_id)
        value = json.dumps({"node": self._node, "token": claim.token,
                            "will": claim.will}).encode()
        problem: Exception | None = None
        for attempt in range(CLAIM_ATTEMPTS):
            if attempt:
                await asyncio.sleep(min(0.05 * 2 ** attempt, 1.0))
            if self._claims.get(client_id) is not claim:
                self._tickets.done(claim.conn, claim.ticket)
                return  # gone meanwhile
            try:
                try:
                    entry = await self._kv.get(key)
                    last = entry.revision or 0
                except nats.js.errors.KeyNotFoundError as exc:  # never, or deleted
                    last = (getattr(exc, "entry", None) and exc.entry.revision) or 0
                claim.revision = await self._kv.update(key, value, last=last)
                self._tickets.done(claim.conn, claim.ticket)
                break
            except Exception as exc:  # raced (read again), or NATS busy electing a leader
                problem = exc
        else:
            log.warning("cluster: could not register client id %r (%s); its connection is "
                        "closed", client_id, problem)
            self._lose(client_id, claim, taken=False)
            self._tickets.done(claim.conn, claim.ticket)  # closed: nothing goes out
            return
        if claim.rival > claim.revision:
            self._lose(client_id, claim)

    async def take(self, key: str, revision: int) -> bool:
        """Take a dead node's claim away (compare-and-set: one node of all succeeds)."""
        try:
            await self._kv.delete(key, last=revision)
        except Exception:  # another node took it first, or its client came back
            return False
        return True

    async def reclaimed(self, key: str) -> bool:
        """Whether a connection claims ``key`` now (its client came back)."""
        try:
            entry = await self._kv.get(key)
        except Exception:  # not found, or deleted
            return False
        return bool(entry.value)

    async def _release(self, client_id: str, claim: Claim) -> None:
        with contextlib.suppress(Exception):  # claimed again since: theirs now
            await self._kv.delete(encode_level(client_id), last=claim.revision)

    async def _watch(self) -> None:
        while True:
            entry = await self._watcher.updates(timeout=None)
            if entry is None:
                continue  # the end of the initial values
            if not entry.value or entry.operation is not None:
                self.known.pop(entry.key, None)  # a deletion
                continue
            try:
                client_id = decode_level(entry.key)
                owner = json.loads(entry.value)
            except ValueError:
                continue
            self.known[entry.key] = (entry.revision, str(owner.get("node")), owner.get("will"))
            claim = self._claims.get(client_id)
            if claim is None or owner.get("token") == claim.token:
                continue
            if claim.revision and entry.revision > claim.revision:
                self._lose(client_id, claim)
            elif not claim.revision:
                claim.rival = max(claim.rival, entry.revision)

    def _lose(self, client_id: str, claim: Claim, taken: bool = True) -> None:
        if self._claims.get(client_id) is claim:
            del self._claims[client_id]
        self._close(claim.conn, taken)
