"""Broker semantics on top of the sans-IO protocol: sessions, routing, retained messages."""

from ._broker import Broker, Scheduler
from ._connection import Connection, Sink
from ._message import Message
from ._retained import RetainedStore
from ._router import Router, Subscription
from ._session import Limits, Session

__all__ = ["Broker", "Connection", "Limits", "Message", "RetainedStore", "Router", "Scheduler",
           "Session", "Sink", "Subscription"]
