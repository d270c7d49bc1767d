"""Broker semantics on top of the sans-IO protocol: sessions, routing, retained messages.

The seams other parts plug into: ``Host`` (what a connection asks of the broker), ``Sink``
(where a connection's bytes go), ``DeliveryTarget`` (where a session's messages go: a client
connection, a bridge link, a remote node).
"""

from . import _inspect as inspection
from ._broker import Broker, Scheduler
from ._connect import Accepted
from ._connection import Connection
from ._host import Host, Sink
from ._message import Message
from ._outgoing import Limits, Outgoing
from ._retained import RetainedStore
from ._router import Router, Subscription
from ._session import Session
from ._states import State
from ._target import DeliveryTarget

__all__ = [
    "Accepted",
    "Broker",
    "Connection",
    "DeliveryTarget",
    "Host",
    "Limits",
    "Message",
    "Outgoing",
    "RetainedStore",
    "Router",
    "Scheduler",
    "Session",
    "Sink",
    "State",
    "Subscription",
    "inspection",
]
