"""The authentication and authorization plugin interface.

A chain of authenticators and a chain of authorizers. Each link answers ALLOW, DENY, or NEXT
("not mine, ask the next one"); the first ALLOW or DENY decides. The password file and the
ACL file are links like any other, so an HTTP, database or JWT check is one small class:

    class HttpAuthenticator:
        async def authenticate(self, client: ClientInfo) -> Verdict:
            ...  # await an HTTP call; return Verdict.ALLOW, Verdict.DENY or Verdict.NEXT

        def reload(self) -> None:  # optional: called on SIGHUP; raise to keep the old state
            ...

Authentication is asynchronous (it may wait on a network or hash a password off the event
loop); authorization is synchronous, because it runs for every message delivered, so an
authorizer that needs remote data should keep it in memory and refresh it in the background.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Protocol, runtime_checkable

from ..protocol import ReasonCode

log = logging.getLogger("culex")


class Verdict(Enum):
    ALLOW = "allow"
    DENY = "deny"
    NEXT = "next"


class Action(IntEnum):
    RECEIVE = 1  # a message is delivered to the client (also retained messages)
    PUBLISH = 2  # the client publishes (also its will)
    SUBSCRIBE = 3  # the client subscribes with a topic filter


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Who is connecting: what every plugin is given."""

    client_id: str
    username: str | None
    password: bytes | None
    peer: str  # "address:port"
    protocol_version: int  # 3, 4 or 5
    certificate_subject: str | None = None  # of a verified TLS client certificate


@runtime_checkable
class Authenticator(Protocol):
    async def authenticate(self, client: ClientInfo) -> Verdict: ...


@runtime_checkable
class Authorizer(Protocol):
    def authorize(self, client: ClientInfo, action: Action, topic: str) -> Verdict: ...


class AuthExchange(Protocol):
    """One MQTT 5 enhanced authentication exchange, server side (MQTT 5.0 4.12)."""

    username: str | None  # who the client proved to be, once the exchange succeeded

    def step(self, data: bytes | None) -> tuple[bool, bytes | None]:
        """The client's Authentication Data in; whether the exchange succeeded (else the
        client is to answer) and the data to send it. Raises an exception to refuse."""
        ...


class AuthMethod(Protocol):
    """An enhanced authentication method, by its Authentication Method name."""

    name: str

    def begin(self) -> AuthExchange: ...


class AuthChain:
    def __init__(self, authenticators: list[Authenticator] | None = None,
                 authorizers: list[Authorizer] | None = None,
                 methods: list[AuthMethod] | None = None) -> None:
        self.authenticators = authenticators or []
        self.authorizers = authorizers or []
        self.methods = {method.name: method for method in methods or []}

    async def authenticate(self, client: ClientInfo, allow_anonymous: bool) -> int | None:
        """None to accept the client, or the MQTT 5 reason code to refuse it with."""
        for link in self.authenticators:
            verdict = await link.authenticate(client)
            if verdict is Verdict.ALLOW:
                return None
            if verdict is Verdict.DENY:
                return ReasonCode.BAD_USER_NAME_OR_PASSWORD
        if client.username is not None and self.authenticators:
            return ReasonCode.BAD_USER_NAME_OR_PASSWORD  # a name nobody knows
        return None if allow_anonymous else ReasonCode.NOT_AUTHORIZED

    def authorize(self, client: ClientInfo, action: Action, topic: str) -> bool:
        for link in self.authorizers:
            verdict = link.authorize(client, action, topic)
            if verdict is not Verdict.NEXT:
                return verdict is Verdict.ALLOW
        # Without authorizers everything is allowed; with them, what none allows is refused.
        return not self.authorizers

    def reload(self) -> None:
        """Reload every link that can; a link that fails keeps its old state."""
        for link in [*self.authenticators, *self.authorizers]:
            reload = getattr(link, "reload", None)
            if reload is None:
                continue
            try:
                reload()
            except Exception as exc:
                log.error("reload of %s failed, keeping the previous version: %s",
                          type(link).__name__, exc)
