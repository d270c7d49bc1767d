"""The chain links backed by Mosquitto-format files: password file and ACL file."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
from collections import Counter, OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ._acl import READ, WRITE, Acl, Rule, check_subscribe, check_topic, read_acl_file
from ._chain import Action, ClientInfo, Verdict
from ._passwd import DEFAULT_ITERATIONS, Credential, PasswordHash, read_password_file
from ._scram import ScramCredential

log = logging.getLogger("culex")

# Verified (user, password) pairs remembered, so that a client reconnecting again and again
# costs one PBKDF2 run, not one per connection. Bounded; emptied when the file is reloaded.
CACHE_SIZE = 4096


class PasswordFileAuthenticator:
    """Checks user names and passwords against a Mosquitto-format password file.

    A name the file does not hold is "not mine" (the next link may know it), but only after the
    same work as for a name it holds: a password hashed with the file's usual cost, and the
    answer remembered the same way, so that timing does not tell which names exist. Hashes run
    in one worker thread of their own, never on the event loop, and never on more than one
    core: a flood of wrong passwords cannot take the CPU the message path needs. The cache
    holds an HMAC of each password under a key that lives only in this process, never the
    password itself, and remembers only the answer for the file's current hash of that user.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.users = read_password_file(self.path)
        self._decoy = _decoy_for(self.users)
        self._executor: ThreadPoolExecutor | None = None
        self._key = os.urandom(32)
        self._cache: OrderedDict[tuple[str, bytes], tuple[Credential, bool]] = OrderedDict()
        self.hashes_computed = 0  # for tests and metrics

    def reload(self) -> None:
        self.users = read_password_file(self.path)
        self._decoy = _decoy_for(self.users)
        self._cache.clear()
        log.info("reloaded password file %s (%d users)", self.path, len(self.users))

    def scram_credential(self, username: str) -> ScramCredential | None:
        """The user's SCRAM-SHA-256 verifier, if the file has one for this user."""
        entry = self.users.get(username)
        return entry if isinstance(entry, ScramCredential) else None

    async def authenticate(self, client: ClientInfo) -> Verdict:
        if client.username is None:
            return Verdict.NEXT
        known = self.users.get(client.username)
        entry = known if known is not None else self._decoy
        password = client.password or b""
        key = (client.username, hmac.new(self._key, password, hashlib.sha256).digest())
        cached = self._cache.get(key)
        if cached is not None and cached[0] is entry:
            self._cache.move_to_end(key)
            ok = cached[1]
        else:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="culex-passwords")
            loop = asyncio.get_running_loop()
            ok = await loop.run_in_executor(self._executor, entry.verify, password)
            self.hashes_computed += 1
            if self.users.get(client.username) is known:  # not reloaded meanwhile
                self._cache[key] = (entry, ok)
                if len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        if known is None:
            return Verdict.NEXT  # after the same work as for a known name
        return Verdict.ALLOW if ok and client.password is not None else Verdict.DENY


def _decoy_for(users: dict[str, Credential]) -> Credential:
    """A credential no password matches, as costly to check as the file's usual one."""
    costs = Counter((entry.scheme, entry.iterations) for entry in users.values()
                    if isinstance(entry, PasswordHash))
    scheme, iterations = costs.most_common(1)[0][0] if costs else ("7", DEFAULT_ITERATIONS)
    return PasswordHash(scheme, iterations, os.urandom(12), os.urandom(64))


class AclFileAuthorizer:
    """Mosquitto's acl_file rules. Authoritative: it allows or denies, never passes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.acl: Acl = read_acl_file(self.path)
        self._rules: dict[tuple[str | None, str], list[Rule]] = {}

    def reload(self) -> None:
        self.acl = read_acl_file(self.path)
        self._rules.clear()
        log.info("reloaded ACL file %s", self.path)

    def authorize(self, client: ClientInfo, action: Action, topic: str) -> Verdict:
        key = (client.username, client.client_id)
        rules = self._rules.get(key)
        if rules is None:
            if len(self._rules) > 65536:
                self._rules.clear()
            rules = self._rules[key] = self.acl.rules_for(client.username, client.client_id)
        if action is Action.SUBSCRIBE:
            ok = check_subscribe(rules, topic)
        else:
            ok = check_topic(rules, topic, READ if action is Action.RECEIVE else WRITE)
        return Verdict.ALLOW if ok else Verdict.DENY
