"""Which connection, on which node, owns each client id: MQTT-3.1.4-3 across the cluster.

A key-value bucket holds, per client id, the node and a token naming the connection that last
claimed it. A claim is a compare-and-set on the key's last revision, so claims are put in one
order, and the last one wins: every node watches the bucket, and a node whose connection's
claim is older than the newest one closes that connection (MQTT 5: DISCONNECT 0x8E, session
taken over). Two connections racing on two nodes therefore leave exactly one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

from ._subjects import decode_level, encode_level

log = logging.getLogger("culex")


class Claim:
    __slots__ = ("conn", "revision", "rival", "token")

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.token = secrets.token_hex(8)
        self.revision = 0  # of this claim in the bucket, once written (0: not yet)
        self.rival = 0  # the newest revision of another connection's claim seen meanwhile


class Owners:
    def __init__(self, node: str, close: Callable[[Any], None]) -> None:
        self._node = node
        self._close = close  # hang up a local connection: another one took its client id
        self._kv: Any = None
        self._claims: dict[str, Claim] = {}  # local connections' claims, by client id
        self._tasks: set[asyncio.Task[None]] = set()
        self._watcher: Any = None

    async def start(self, kv: Any) -> None:
        self._kv = kv
        self._watcher = await kv.watchall(include_history=False)
        task = asyncio.get_running_loop().create_task(self._watch())
        self._tasks.add(task)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._watcher is not None:
            with contextlib.suppress(Exception):  # the connection may be gone already
                await self._watcher.stop()

    def connected(self, client_id: str, conn: Any) -> None:
        """A local connection was accepted for ``client_id``: claim it for the cluster."""
        claim = Claim(conn)
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
        value = json.dumps({"node": self._node, "token": claim.token}).encode()
        for _ in range(20):
            try:
                try:
                    entry = await self._kv.get(key)
                    last = entry.revision if entry.value else 0
                except Exception:  # not found, or deleted
                    last = 0
                claim.revision = await self._kv.update(key, value, last=last)
                break
            except Exception as exc:  # someone claimed in between: read again, claim again
                log.debug("cluster: claim of %r raced: %s", client_id, exc)
        else:
            log.warning("cluster: could not claim client id %r; its connection is closed",
                        client_id)
            self._lose(client_id, claim)
            return
        if claim.rival > claim.revision:
            self._lose(client_id, claim)

    async def _release(self, client_id: str, claim: Claim) -> None:
        with contextlib.suppress(Exception):  # claimed again since: theirs now
            await self._kv.delete(encode_level(client_id), last=claim.revision)

    async def _watch(self) -> None:
        while True:
            entry = await self._watcher.updates(timeout=None)
            if entry is None or not entry.value or entry.operation is not None:
                continue  # the end of the initial values, or a deletion
            try:
                client_id = decode_level(entry.key)
                owner = json.loads(entry.value)
            except ValueError:
                continue
            claim = self._claims.get(client_id)
            if claim is None or owner.get("token") == claim.token:
                continue
            if claim.revision and entry.revision > claim.revision:
                self._lose(client_id, claim)
            elif not claim.revision:
                claim.rival = max(claim.rival, entry.revision)

    def _lose(self, client_id: str, claim: Claim) -> None:
        if self._claims.get(client_id) is claim:
            del self._claims[client_id]
        self._close(claim.conn)
