"""The broker's counters: one seam where counting happens.

Each thing is counted where it happens, as an integer increment on a slot of one object (no
callback, no lock: the event loop is one thread). Counters only grow; observers ($SYS, the
Prometheus exposition, the dashboard) read ``snapshot()`` on their own timers and derive
rates and gauges themselves. Lists indexed by QoS keep "by QoS" as cheap as a plain counter.
"""

from __future__ import annotations

from typing import Any

# Why a message did not reach a subscriber (or any).
DROP_REASONS = ("queue_full", "too_large", "expired", "no_subscribers", "not_authorized")
# Why a connection was refused before it was accepted: the CONNACK's reason code by name, or
# why none was sent. These are always reported (as 0 until they happen); others as they come.
REFUSAL_REASONS = ("not_authorized", "bad_user_name_or_password", "client_identifier_not_valid",
                   "unsupported_protocol_version", "bad_authentication_method",
                   "server_unavailable", "protocol_error", "timeout", "max_connections")
# Why an accepted connection ended: the DISCONNECT's reason, or what happened.
CLOSE_REASONS = ("client", "lost", "protocol_error", "keep_alive", "taken_over",
                 "not_authorized", "shutdown")
# Upper bounds (seconds) of the store commit duration histogram: from a fast SSD's fsync to a
# struggling SD card's.
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Counters:
    __slots__ = (
        "auth_failures",
        "auth_successes",
        "auth_throttled",
        "bytes_received",
        "bytes_sent",
        "closed",
        "commit_buckets",
        "commit_seconds",
        "commits",
        "connections_accepted",
        "connections_opened",
        "dropped",
        "messages_received",
        "messages_sent",
        "other_packets_sent",
        "packets_received",
        "peer_messages_received",
        "peer_messages_sent",
        "publish_bytes_received",
        "publish_bytes_sent",
        "refused",
        "sessions_expired",
        "tls_failures",
    )

    def __init__(self) -> None:
        self.bytes_received = 0
        self.bytes_sent = 0
        self.packets_received = 0  # counted per read, not per packet
        # Packets sent are counted as PUBLISH (by QoS) and others: a PUBLISH costs one
        # increment fewer per message on the hot path, and the total is their sum.
        self.other_packets_sent = 0
        self.messages_received = [0, 0, 0]  # PUBLISH packets from clients, by QoS
        self.messages_sent = [0, 0, 0]  # PUBLISH packets to clients, by QoS, resends included
        self.publish_bytes_received = 0  # payload bytes of those
        self.publish_bytes_sent = 0
        self.dropped = dict.fromkeys(DROP_REASONS, 0)
        self.connections_opened = 0  # network connections accepted by a listener
        self.connections_accepted = 0  # CONNECTs accepted (a CONNACK with success sent)
        self.refused = dict.fromkeys(REFUSAL_REASONS, 0)
        self.closed = dict.fromkeys(CLOSE_REASONS, 0)
        self.sessions_expired = 0  # ended by their expiry interval, their client away
        self.auth_successes = 0
        self.auth_failures = 0
        self.auth_throttled = 0  # login attempts made to wait after failures from their address
        self.tls_failures: dict[str, int] = {}  # failed TLS handshakes, by OpenSSL's reason
        # In a cluster: messages sent to the other nodes through NATS, and received from them.
        self.peer_messages_sent = 0
        self.peer_messages_received = 0
        self.commits = 0  # store transactions written
        self.commit_seconds = 0.0
        self.commit_buckets = [0] * (len(COMMIT_BUCKETS) + 1)  # the last one: above them all

    @property
    def packets_sent(self) -> int:
        return self.other_packets_sent + sum(self.messages_sent)

    def refuse(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1

    def close(self, reason: str) -> None:
        self.closed[reason] = self.closed.get(reason, 0) + 1

    def tls_failure(self, reason: str) -> None:
        self.tls_failures[reason] = self.tls_failures.get(reason, 0) + 1

    def commit(self, seconds: float) -> None:
        """A store transaction took ``seconds`` (from BEGIN to the end of COMMIT)."""
        self.commits += 1
        self.commit_seconds += seconds
        buckets = self.commit_buckets
        for index, bound in enumerate(COMMIT_BUCKETS):
            if seconds <= bound:
                buckets[index] += 1
                return
        buckets[-1] += 1

    def snapshot(self) -> dict[str, Any]:
        """Every counter at this moment, as plain data (copies: the caller may keep it)."""
        return {
            "bytes": {"received": self.bytes_received, "sent": self.bytes_sent},
            "packets": {"received": self.packets_received, "sent": self.packets_sent},
            "messages": {
                "received": _by_qos(self.messages_received),
                "sent": _by_qos(self.messages_sent),
            },
            "publish_bytes": {"received": self.publish_bytes_received,
                              "sent": self.publish_bytes_sent},
            "dropped": dict(self.dropped),
            "connections": {"opened": self.connections_opened,
                            "accepted": self.connections_accepted,
                            "refused": dict(self.refused),
                            "closed": dict(self.closed),
                            "tls_failures": dict(self.tls_failures)},
            "sessions": {"expired": self.sessions_expired},
            "auth": {"successes": self.auth_successes, "failures": self.auth_failures,
                     "throttled": self.auth_throttled},
            "cluster": {"sent": self.peer_messages_sent,
                        "received": self.peer_messages_received},
            "store": {
                "commits": self.commits,
                "commit_seconds": self.commit_seconds,
                # Cumulative, as Prometheus histograms are: commits that took <= each bound.
                "commit_buckets": list(zip((*COMMIT_BUCKETS, float("inf")),
                                           _cumulative(self.commit_buckets), strict=True)),
            },
        }


def _by_qos(values: list[int]) -> dict[int, int]:
    return {qos: values[qos] for qos in range(3)}


def _cumulative(values: list[int]) -> list[int]:
    total = 0
    out = []
    for value in values:
        total += value
        out.append(total)
    return out
