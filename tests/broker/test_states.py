"""The connection's states: the allowed transitions are one table, and others raise."""

from __future__ import annotations

import pytest

from culex.broker._states import (
    AUTHENTICATING,
    CLOSED,
    CONNECTED,
    NEW,
    TRANSITIONS,
    State,
    TransitionError,
    check,
)


def test_the_table_covers_every_state_and_closed_is_final() -> None:
    assert set(TRANSITIONS) == set(State)
    assert TRANSITIONS[CLOSED] == frozenset()
    assert all(CLOSED in targets for state, targets in TRANSITIONS.items() if state is not CLOSED)


@pytest.mark.parametrize(("current", "new"), [
    (NEW, AUTHENTICATING), (AUTHENTICATING, CONNECTED), (NEW, CLOSED),
    (AUTHENTICATING, CLOSED), (CONNECTED, CLOSED)])
def test_allowed(current: State, new: State) -> None:
    assert check(current, new) is new


@pytest.mark.parametrize(("current", "new"), [
    (NEW, CONNECTED), (CONNECTED, AUTHENTICATING), (CONNECTED, NEW), (CLOSED, NEW),
    (CLOSED, CONNECTED), (CLOSED, CLOSED)])
def test_refused_with_both_states_named(current: State, new: State) -> None:
    with pytest.raises(TransitionError, match=f"from {current.value} to {new.value}"):
        check(current, new)
