"""What the broker holds at one moment, as observers see it (counters say what happened)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class Gauges:
    connected: int  # clients connected now
    connected_peak: int  # the most connected at once since the start
    sessions: int  # every session held: connected, and persistent ones whose client is away
    subscriptions: int  # shared subscriptions included
    shared_subscriptions: int
    retained_messages: int
    retained_bytes: int  # payloads
    queued_messages: int  # waiting in sessions' queues, connected or not
    queued_bytes: int
    inflight_messages: int  # sent to clients, not yet acknowledged
