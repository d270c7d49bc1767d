"""Floods and slow readers against a real broker process: memory stays bounded, the flooding
publisher's acknowledgements keep pace, a subscriber that reads gets every message, and only
subscribers that stop reading lose theirs. Each flood is bounded in time (loopback only)."""

from __future__ import annotations

from flood import Reader, connected, flood_qos1, qos0_publish_size
from support import WAIT, running_broker

FLOOD_SECONDS = 3.0
# Resident memory a flood may add to the broker: the bounds are per connection (a write buffer
# of 256 KB, one read slice of 256 KB, the queue limits), and Python's allocator keeps some.
MAX_GROWTH_KB = 12_000


def test_a_qos1_flood_is_acknowledged_as_it_goes_in_bounded_memory() -> None:
    """The publisher reads its PUBACKs only when its socket is readable: the broker stops
    reading it while its PUBACKs are not read, instead of holding them."""
    with running_broker("--no-persistence") as broker:
        assert broker.proc is not None
        result = flood_qos1(broker.port, broker.proc.pid, FLOOD_SECONDS)
    assert result.sent > 10_000  # it was a flood
    assert result.rss_growth_kb < MAX_GROWTH_KB, result
    assert result.acked_during >= result.sent // 2, result  # PUBACKs kept pace
    assert result.acked == result.sent  # and every one came


def test_a_reading_subscriber_gets_everything_and_stalled_ones_lose_theirs() -> None:
    with running_broker("--no-persistence") as broker:
        assert broker.proc is not None
        stalled = [connected(broker.port, f"stalled{n}", ("flood/#", 0)) for n in range(2)]
        healthy = Reader(connected(broker.port, "healthy", ("flood/#", 0)))
        try:
            result = flood_qos1(broker.port, broker.proc.pid, FLOOD_SECONDS)
            size = qos0_publish_size("flood/t")
            assert healthy.wait_for(result.acked * size, WAIT)
            assert healthy.received == result.acked * size  # every message, nothing more
            for n in range(2):
                broker.wait_for_log(f"dropping messages for client stalled{n}")
            assert "dropping messages for client healthy" not in "".join(broker.lines)
            assert result.rss_growth_kb < MAX_GROWTH_KB, result
        finally:
            healthy.stop()
            for sock in stalled:
                sock.close()
