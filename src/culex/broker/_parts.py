"""What the parts of a ``Connection`` know of one another: its fields, typed, and the methods
one part calls and another defines.

The parts (``Holds``, ``EnhancedAuth``, ``Handlers``, then ``Connection`` itself) are one
chain of classes, each deriving from the one before, rather than mixins: mypyc compiles single
inheritance (mixins only as traits), and the connection is on the path of every message. The
slots are ``Connection``'s; each part reads and writes only the fields of its own concern.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..auth import ClientInfo
    from ..observability import Counters
    from ..protocol import Connect, Decoder, Packet, ReasonCode
    from ._connect import Refusal
    from ._held import HeldWrites
    from ._host import Host, Sink
    from ._session import Session
    from ._states import State


class ConnectionParts:
    # All of a connection's fields; below, those the parts share.
    __slots__ = ("_clean_exit", "_connect", "_counters", "_deferred", "_exchange", "_held",
                 "_in_process", "_keepalive_limit", "_last_rx", "_method", "_peers_done",
                 "_qos2_in", "_read_holds", "_store_done", "aliases", "auth_method",
                 "auth_reply", "bridge", "cert_cn", "cert_subject", "client", "client_id",
                 "connect_expiry", "decoder", "host", "keep_alive", "listener", "max_out_alias",
                 "max_out_packet", "out_aliases", "paused", "peer", "send_window", "session",
                 "sink", "state", "version")

    host: Host
    sink: Sink
    state: State
    version: int
    bridge: bool
    client_id: str
    client: ClientInfo | None
    session: Session | None
    aliases: dict[int, str] | None
    connect_expiry: int
    decoder: Decoder
    auth_method: str | None
    auth_reply: bytes | None
    _counters: Counters
    _qos2_in: set[int] | None
    _clean_exit: bool
    _held: HeldWrites | None
    _store_done: int
    _peers_done: int
    _method: Any
    _exchange: Any
    _connect: Connect | None
    _deferred: list[Packet] | None

    # Defined by Connection, called by the other parts.

    def send(self, packet: Packet) -> None:
        raise NotImplementedError

    def write(self, data: bytes | memoryview) -> None:
        raise NotImplementedError

    def send_pubrel(self, packet_id: int) -> None:
        raise NotImplementedError

    def close(self, reason: ReasonCode, why: str) -> None:
        raise NotImplementedError

    def hold_reading(self) -> None:
        raise NotImplementedError

    def release_reading(self) -> None:
        raise NotImplementedError

    def authenticated(self, client: ClientInfo, refusal: Refusal | None) -> None:
        raise NotImplementedError

    def _finish(self, why: str, counted_as: str) -> None:
        raise NotImplementedError

    def _refuse_quietly(self, why: str, counted_as: str = "protocol_error") -> None:
        raise NotImplementedError

    def _refuse_connect(self, packet: Connect, reason: int, why: str) -> None:
        raise NotImplementedError
