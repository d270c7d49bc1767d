"""What the dashboard reads of the broker, as plain data."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from ..broker import inspection

if TYPE_CHECKING:
    from ..broker import Broker
    from ..observability import Counters


class DashboardView:
    def __init__(self, broker: Broker, counters: Counters) -> None:
        self._broker = broker
        self._counters = counters
        self._start = time.monotonic()
        self._sample = (self._start, 0, 0)  # time, messages in, messages out
        self._rates = (0.0, 0.0)

    def overview(self) -> dict[str, Any]:
        counters = self._counters
        now = time.monotonic()
        received, sent = sum(counters.messages_received), sum(counters.messages_sent)
        then, received_then, sent_then = self._sample
        if now - then >= 0.5:  # rates over at least half a second, shared by every page
            span = now - then
            self._rates = ((received - received_then) / span, (sent - sent_then) / span)
            self._sample = (now, received, sent)
        return {"uptime": round(now - self._start, 1), "counters": counters.snapshot(),
                "gauges": asdict(self._broker.gauges()),
                "rates": {"messages_in": round(self._rates[0], 1),
                          "messages_out": round(self._rates[1], 1)}}

    def clients(self) -> list[dict[str, Any]]:
        return inspection.clients(self._broker)

    def disconnect(self, client_id: str) -> bool:
        return inspection.disconnect(self._broker, client_id)

    def retained(self, topic_filter: str) -> list[dict[str, Any]]:
        return inspection.retained(self._broker, topic_filter)

    def delete_retained(self, topic_filter: str) -> int:
        return inspection.delete_retained(self._broker, topic_filter)
