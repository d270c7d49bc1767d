"""What a connection needs around it: a ``Sink`` for its bytes (the transport layer, or a buffer
in tests) and a ``Host`` for what it asks of the broker. Both are interfaces, so that a
connection can be built and driven in a test with neither a socket nor a ``Broker``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

from ..persistence import Holder
from ._peers import PeerHolder

if TYPE_CHECKING:
    from ..auth import ClientInfo
    from ..config import Config, ListenerConfig
    from ..observability import Counters
    from ..protocol import AssemblyBudget, Connect, Publish, Subscribe, Unsubscribe
    from ._connect import Accepted, Refusal, Verdict
    from ._deadlines import Deadlines
    from ._session import Session
    from ._subscriptions import RetainedDelivery
    from ._target import DeliveryTarget


class Publisher(Holder, PeerHolder, Protocol):
    """A connection as the broker sees it when it publishes for it."""

    @property
    def client_id(self) -> str: ...
    @property
    def client(self) -> ClientInfo | None: ...

    def hold_reading(self) -> None:
        """Stop reading from the client until release_reading: a subscriber is slow."""

    def release_reading(self) -> None: ...


class Sink(Protocol):
    """Where a connection's bytes go: the transport layer, or a list in tests."""

    def write(self, data: bytes | memoryview) -> None: ...

    def flush(self) -> None:
        """Send what was written now rather than at the end of the loop iteration."""

    def close(self) -> None: ...

    def pause_reading(self) -> None:
        """Read nothing more from the peer until resume_reading (TCP pushes back on it)."""

    def resume_reading(self) -> None: ...


class Host(Protocol):
    """What a connection asks of the broker (a ``Broker`` is one; tests use stand-ins)."""

    @property
    def config(self) -> Config: ...
    @property
    def counters(self) -> Counters: ...
    @property
    def deadlines(self) -> Deadlines: ...
    @property
    def assembly(self) -> AssemblyBudget: ...

    def clock(self) -> float: ...

    def check_connect(self, packet: Connect) -> Refusal | None: ...

    def assign_client_id(self) -> str: ...

    def authenticate(self, conn: Verdict, packet: Connect, client: ClientInfo,
                     by_certificate: bool, listener: ListenerConfig | None) -> None:
        """Answer through ``conn.authenticated`` (now or later) or ``conn.start_exchange``."""

    def authorize_will(self, conn: Verdict, packet: Connect, client: ClientInfo,
                       reason: int | None) -> None: ...

    def login_failed(self, peer: str) -> None:
        """A client from ``peer`` was refused who it said it was: slow its address down."""

    def admit(self, conn: DeliveryTarget, packet: Connect,
              then: Callable[[Refusal | None], None]) -> None:
        """An authenticated client is about to be connected: call ``then`` (now, or later)
        with None, or the reason to refuse it."""

    def connect(self, conn: DeliveryTarget, packet: Connect, client: ClientInfo,
                auth_method: str | None, auth_reply: bytes | None) -> Accepted | None:
        """Take over or create the session of an authenticated client; None if the CONNACK
        would be larger than the client accepts."""
        ...

    def disconnected(self, conn: DeliveryTarget, session: Session, publish_will: bool) -> None: ...

    def publish_from_client(self, conn: Publisher, topic: str, packet: Publish) -> int:
        """Route a client's PUBLISH; the reason code for its PUBACK or PUBREC."""
        ...

    def subscribe(self, session: Session, version: int, packet: Subscribe
                  ) -> tuple[list[int], Iterator[RetainedDelivery]]: ...

    def unsubscribe(self, session: Session, packet: Unsubscribe) -> list[int]: ...
