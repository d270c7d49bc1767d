"""The states of a client connection and the transitions allowed between them, in one place.

    NEW --CONNECT checked--> AUTHENTICATING --accepted--> CONNECTED
     |                            |                          |
     +----------------------------+--------------------------+--> CLOSED

A transition not in the table is a bug in the broker, not in the client: it raises.
"""

from __future__ import annotations

import enum


class State(enum.Enum):
    NEW = "new"  # no CONNECT yet
    AUTHENTICATING = "authenticating"  # CONNECT received, the verdict not yet
    CONNECTED = "connected"  # CONNACK sent
    CLOSED = "closed"  # nothing more is read or written

    # By identity (each state is one object), in C: Enum's own hash is Python code, run for
    # every lookup in TRANSITIONS, three times per connection.
    __hash__ = object.__hash__


NEW = State.NEW
AUTHENTICATING = State.AUTHENTICATING
CONNECTED = State.CONNECTED
CLOSED = State.CLOSED

TRANSITIONS: dict[State, frozenset[State]] = {
    NEW: frozenset({AUTHENTICATING, CLOSED}),
    AUTHENTICATING: frozenset({CONNECTED, CLOSED}),
    CONNECTED: frozenset({CLOSED}),
    CLOSED: frozenset(),
}


class TransitionError(RuntimeError):
    """A connection was asked to move between states the table does not link."""


def check(current: State, new: State) -> State:
    """``new``, if a connection in ``current`` may move to it."""
    if new not in TRANSITIONS[current]:
        raise TransitionError(f"connection cannot go from {current.value} to {new.value}")
    return new
