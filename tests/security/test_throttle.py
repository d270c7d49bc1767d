"""Failed logins slow their address down (sans-IO: a clock that moves when told)."""

from __future__ import annotations

import logging

import pytest

from culex.auth import AuthChain, ClientInfo, Verdict
from culex.broker import Broker
from culex.broker._throttle import FIRST_DELAY, FORGET_AFTER
from culex.config import Config
from culex.protocol import ConnAck, Connect, ReasonCode

from support import FakeScheduler, MemoryClient


class OnePassword:
    async def authenticate(self, client: ClientInfo) -> Verdict:
        return Verdict.ALLOW if client.password == b"right" else Verdict.DENY


def make(**options: object) -> tuple[Broker, FakeScheduler]:
    config = Config(**options)  # type: ignore[arg-type]
    config.validate()
    scheduler = FakeScheduler()
    return Broker(config, scheduler, AuthChain([OnePassword()])), scheduler


def attempt(broker: Broker, peer: str, password: bytes) -> MemoryClient:
    client = MemoryClient(broker, 5, peer=peer)
    client.send(Connect(f"c-{peer}", 5, username="u", password=password))
    return client


def answer(client: MemoryClient) -> int | None:
    """The CONNACK's reason code, or None while there is no answer yet."""
    packets = client.received()
    client.backlog = packets
    return packets[0].reason_code if packets and isinstance(packets[0], ConnAck) else None


def test_failures_slow_their_address_down_and_attempts_wait_their_turns(
        caplog: pytest.LogCaptureFixture) -> None:
    broker, clock = make()
    refused = ReasonCode.BAD_USER_NAME_OR_PASSWORD
    assert answer(attempt(broker, "attacker:1", b"guess")) == refused  # the first: at once
    second = attempt(broker, "attacker:2", b"guess")
    assert answer(second) is None
    clock.advance(FIRST_DELAY)
    assert answer(second) == refused
    with caplog.at_level(logging.WARNING, logger="culex"):
        third, fourth = attempt(broker, "attacker:3", b"x"), attempt(broker, "attacker:4", b"y")
    assert "2 failed logins from attacker" in caplog.text
    clock.advance(2 * FIRST_DELAY)  # two failures: twice the delay
    assert answer(third) == refused and answer(fourth) is None  # one at a time
    clock.advance(2 * FIRST_DELAY)
    assert answer(fourth) == refused
    # The right password from there waits too; another address does not.
    assert answer(attempt(broker, "friend:1", b"right")) == 0
    late = attempt(broker, "attacker:5", b"right")
    assert answer(late) is None
    clock.advance(8 * FIRST_DELAY)
    assert answer(late) == 0
    assert broker.counters.snapshot()["auth"]["throttled"] == 4
    # Forgotten a while after the last failure.
    clock.advance(FORGET_AFTER + 1)
    assert answer(attempt(broker, "attacker:6", b"right")) == 0


def test_the_delay_has_a_ceiling_and_can_be_switched_off() -> None:
    broker, clock = make(max_auth_failure_delay=0.3)
    for n in range(6):
        client = attempt(broker, f"attacker:{n}", b"guess")
        clock.advance(0.3)  # never more than the ceiling
        assert answer(client) == ReasonCode.BAD_USER_NAME_OR_PASSWORD
    broker, clock = make(max_auth_failure_delay=0)
    for n in range(3):
        assert answer(attempt(broker, f"attacker:{n}", b"guess")) \
            == ReasonCode.BAD_USER_NAME_OR_PASSWORD
    assert broker.counters.auth_throttled == 0


def test_an_attempt_that_waits_past_the_connect_timeout_is_closed(
        caplog: pytest.LogCaptureFixture) -> None:
    broker, clock = make(max_auth_failure_delay=60, connect_timeout=10)
    for n in range(8):  # failures enough for a wait longer than the connect timeout
        client = attempt(broker, f"attacker:{n}", b"guess")
        clock.advance(20)  # each answered (waits of 6.4 s at most), none forgotten
    with caplog.at_level(logging.INFO, logger="culex"):
        waiting = attempt(broker, "attacker:9", b"guess")
        clock.advance(11)
    assert waiting.sink.closed and answer(waiting) is None
    assert "not authenticated within connect_timeout" in caplog.text
    assert broker.counters.refused["timeout"] == 1
    assert answer(client) == ReasonCode.BAD_USER_NAME_OR_PASSWORD
