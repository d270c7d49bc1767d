"""What every kind of listener does with a new connection, in one place: admission under
max_connections, the peer's address and TLS identity, counting, and the sans-IO Connection."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from ..broker import Connection
from ._tls import certificate_identity

if TYPE_CHECKING:
    from ..broker import Host, Sink
    from ..config import ListenerConfig

log = logging.getLogger("culex")


class Gate(Protocol):
    """Admission of connections (the application keeps the count, for max_connections and
    for closing them all at a stop)."""

    def admit(self, sink: Any, listener: ListenerConfig | None) -> bool: ...

    def release(self, sink: Any) -> None: ...


def peer_name(address: Any) -> str:
    return f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)


def open_connection(host: Host, gate: Gate, sink: Sink, peer: str,
                    listener: ListenerConfig | None, peercert: Any) -> Connection | None:
    """The connection for a new peer, or None if max_connections refuses it (the caller
    then hangs up)."""
    counters = host.counters
    if not gate.admit(sink, listener):
        log.warning("refused: connection from %s: max_connections reached", peer,
                    extra={"event": "refused", "peer": peer, "reason": "max_connections"})
        counters.refuse("max_connections")
        return None
    counters.connections_opened += 1
    subject = common_name = None
    if listener is not None and listener.tls:
        subject, common_name = certificate_identity(peercert)
    return Connection(host, sink, peer, listener, subject, common_name)
