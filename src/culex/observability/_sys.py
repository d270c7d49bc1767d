"""The ``$SYS`` topics, with Mosquitto's names, formats and meaning.

Dashboards, Home Assistant sensors and the mosquitto-exporter read these topics by name, so they
are Mosquitto's: ``$SYS/broker/clients/connected``, ``.../load/messages/received/1min`` and so on,
integers as decimal text, loads with two decimals, the uptime as "N seconds". Every
``sys_interval`` seconds each value that changed is published, retained; a client that
subscribes later gets the current ones at once. Clients cannot publish under ``$SYS`` (the
broker refuses it) and read it only where the ACL lets them.

Loads are Mosquitto's smoothed rates per minute: after ``dt`` seconds in which a counter grew by
``n``, the rate of that interval is ``n * 60 / dt`` and each load moves towards it,
``load = rate + exp(-dt / T) * (load - rate)``, with T = 1, 5 and 15 minutes; a load is
published when it moved by 0.01 or more.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._counters import Counters
    from ._gauges import Gauges

PREFIX = "$SYS/broker/"
LOAD_PERIODS = (("1min", 60.0), ("5min", 300.0), ("15min", 900.0))
# Messages lost on their way to a subscriber (Mosquitto: "dropped due to inflight/queuing
# limits"); a message nobody subscribed to is not one of them.
LOST = ("queue_full", "too_large", "expired")


def counter_values(counters: Counters) -> dict[str, int]:
    """The counters that have loads, by the middle part of their load topic."""
    refused = counters.refused
    connects = (counters.connections_accepted + sum(refused.values())
                - refused.get("max_connections", 0) - refused.get("timeout", 0))
    return {
        "messages/received": counters.packets_received,
        "messages/sent": counters.packets_sent,
        "publish/dropped": sum(counters.dropped[reason] for reason in LOST),
        "publish/received": sum(counters.messages_received),
        "publish/sent": sum(counters.messages_sent),
        "bytes/received": counters.bytes_received,
        "bytes/sent": counters.bytes_sent,
        "sockets": counters.connections_opened,
        "connections": connects,  # CONNECT packets received
    }


def values(counters: Counters, gauges: Gauges, uptime: float) -> dict[str, str]:
    """Every periodic value but the loads, by topic below ``$SYS/broker/``."""
    counted = counter_values(counters)
    stored = gauges.retained_messages + gauges.queued_messages + gauges.inflight_messages
    disconnected = gauges.sessions - gauges.connected
    numbers: dict[str, int] = {
        "clients/connected": gauges.connected,
        "clients/active": gauges.connected,  # Mosquitto's older name
        "clients/disconnected": disconnected,
        "clients/inactive": disconnected,  # Mosquitto's older name
        "clients/total": gauges.sessions,
        "clients/maximum": gauges.connected_peak,
        "clients/expired": counters.sessions_expired,
        "messages/received": counted["messages/received"],
        "messages/sent": counted["messages/sent"],
        "messages/stored": stored,  # Mosquitto's older name
        "store/messages/count": stored,
        "store/messages/bytes": gauges.retained_bytes + gauges.queued_bytes,
        "publish/messages/received": counted["publish/received"],
        "publish/messages/sent": counted["publish/sent"],
        "publish/messages/dropped": counted["publish/dropped"],
        "bytes/received": counters.bytes_received,
        "bytes/sent": counters.bytes_sent,
        "publish/bytes/received": counters.publish_bytes_received,
        "publish/bytes/sent": counters.publish_bytes_sent,
        "connections/socket/count": counters.connections_opened,
        "subscriptions/count": gauges.subscriptions,
        "shared_subscriptions/count": gauges.shared_subscriptions,
        "retained messages/count": gauges.retained_messages,
    }
    result = {topic: str(number) for topic, number in numbers.items()}
    result["uptime"] = f"{int(uptime)} seconds"
    return result


class SysTree:
    """Publishes the ``$SYS`` values every ``interval`` seconds on a scheduler's timer."""

    def __init__(self, counters: Counters, gauges: Callable[[], Gauges],
                 publish: Callable[[str, bytes], None], scheduler: Any, interval: float,
                 version: str, extra: Callable[[], dict[str, str]] = dict) -> None:
        self._counters = counters
        self._extra = extra  # more values by topic below $SYS/broker/ (a cluster's)
        self._gauges = gauges
        self._publish = publish
        self._scheduler = scheduler
        self._interval = interval
        self._version = version
        self._start = self._last = scheduler.time()
        self._previous = counter_values(counters)
        self._loads = {f"load/{name}/{period}": 0.0
                       for name in self._previous for period, _ in LOAD_PERIODS}
        self._published: dict[str, str] = {}
        self._timer: Any = None

    def start(self) -> None:
        self._publish(PREFIX + "version", f"culex version {self._version}".encode())
        for topic, load in self._loads.items():  # all loads start at 0.00, as Mosquitto's
            self._send(topic, f"{load:.2f}")
        self.update()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def update(self) -> None:
        """Publish what changed since the last update, and set the next one."""
        now = self._scheduler.time()
        current_values = values(self._counters, self._gauges(), now - self._start)
        for topic, text in (current_values | self._extra()).items():
            if self._published.get(topic) != text:
                self._send(topic, text)
        elapsed = now - self._last
        if elapsed > 0:
            current = counter_values(self._counters)
            for name, value in current.items():
                rate = (value - self._previous[name]) * 60.0 / elapsed
                for period, seconds in LOAD_PERIODS:
                    topic = f"load/{name}/{period}"
                    old = self._loads[topic]
                    new = rate + math.exp(-elapsed / seconds) * (old - rate)
                    if abs(new - old) >= 0.01:
                        self._send(topic, f"{new:.2f}")
                    self._loads[topic] = new
            self._previous = current
            self._last = now
        self._timer = self._scheduler.call_later(self._interval, self.update)

    def _send(self, topic: str, text: str) -> None:
        self._published[topic] = text
        self._publish(PREFIX + topic, text.encode())
