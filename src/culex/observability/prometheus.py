"""The Prometheus exposition of the counters and gauges, with prometheus_client (imported
only when an HTTP listener is configured).

Names follow Prometheus conventions: the ``culex_`` prefix, base units (bytes, seconds),
``_total`` on counters, labels for QoS, reason and listener. Values are read at scrape time
from the same counters and gauges ``$SYS`` publishes, so the two agree; nothing is counted twice
and the MQTT path does no work for a scraper. Process CPU and memory come from
prometheus_client's own process collector (``process_*``, read from /proc).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from ._counters import Counters
    from ._gauges import Gauges

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ListenerState:
    """What the exposition says of one listener: its name, kind and open connections."""

    def __init__(self, name: str, protocol: str, connections: Callable[[], int]) -> None:
        self.name = name
        self.protocol = protocol
        self.connections = connections


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _by(name: str, doc: str, label: str, values: dict[str, int] | dict[int, int]
        ) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, value in values.items():
        family.add_metric([str(key)], value)
    return family


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


class BrokerCollector(Collector):
    def __init__(self, counters: Counters, gauges: Callable[[], Gauges],
                 listeners: Iterable[ListenerState], version: str,
                 bridges: Callable[[], list[tuple[str, bool]]] = list,
                 cluster: Callable[[], dict[str, Any] | None] = lambda: None) -> None:
        self._counters = counters
        self._cluster = cluster  # this node and the cluster (ClusterNode.describe), if any
        self._gauges = gauges
        self._listeners = list(listeners)
        self._version = version
        self._bridges = bridges  # (name, connected) of each bridge

    def collect(self) -> Iterator[Metric]:
        snap = self._counters.snapshot()
        yield from self._traffic()
        yield from self._connections()
        yield from self._holdings(self._gauges())
        store = snap["store"]
        buckets = [(_bound(bound), count) for bound, count in store["commit_buckets"]]
        yield HistogramMetricFamily(
            "culex_store_commit_duration_seconds",
            "Time each store transaction took, from BEGIN to the end of COMMIT.",
            buckets=buckets, sum_value=store["commit_seconds"])
        links = GaugeMetricFamily("culex_bridge_connected", "Whether each bridge's link to "
                                  "its remote broker is up (1) or not (0).",
                                  labels=["bridge"])
        for name, connected in self._bridges():
            links.add_metric([name], int(connected))
        yield links
        cluster = self._cluster()
        if cluster is not None:
            node = GaugeMetricFamily("culex_cluster_connected", "Whether this node of the "
                                     "cluster is connected to NATS (1) or not (0).",
                                     labels=["node"])
            node.add_metric([cluster["node"]], int(cluster["connected"]))
            yield node
            yield GaugeMetricFamily("culex_cluster_nodes", "Nodes of the cluster alive, as "
                                    "this one sees them (itself included).",
                                    value=len(cluster["nodes"]))
            yield _by("culex_cluster_messages", "Messages sent to the other nodes and "
                      "received from them.", "direction",
                      {"sent": self._counters.peer_messages_sent,
                       "received": self._counters.peer_messages_received})
        info = GaugeMetricFamily("culex_build_info", "culex's version (the value is 1).",
                                 labels=["version"])
        info.add_metric([self._version], 1)
        yield info

    def _traffic(self) -> Iterator[Metric]:
        c = self._counters
        yield _counter("culex_bytes_received", "Bytes received from clients.",
                       c.bytes_received)
        yield _counter("culex_bytes_sent", "Bytes sent to clients.", c.bytes_sent)
        yield _counter("culex_packets_received", "MQTT packets received, of every kind.",
                       c.packets_received)
        yield _counter("culex_packets_sent", "MQTT packets sent, of every kind.",
                       c.packets_sent)
        yield _by("culex_messages_received", "PUBLISH packets received from clients.",
                  "qos", dict(enumerate(c.messages_received)))
        yield _by("culex_messages_sent", "PUBLISH packets sent to clients, resends included.",
                  "qos", dict(enumerate(c.messages_sent)))
        yield _counter("culex_payload_bytes_received", "Payload bytes of PUBLISH received.",
                       c.publish_bytes_received)
        yield _counter("culex_payload_bytes_sent", "Payload bytes of PUBLISH sent.",
                       c.publish_bytes_sent)
        yield _by("culex_messages_dropped", "Messages that reached no subscriber, or not "
                  "every one, by reason.", "reason", dict(c.dropped))

    def _connections(self) -> Iterator[Metric]:
        c = self._counters
        yield _counter("culex_connections_opened", "Network connections accepted by a "
                       "listener.", c.connections_opened)
        yield _counter("culex_connections_accepted", "CONNECTs accepted.",
                       c.connections_accepted)
        yield _by("culex_connections_refused", "Connections refused before being accepted, "
                  "by reason.", "reason", dict(c.refused))
        yield _by("culex_connections_closed", "Accepted connections that ended, by reason.",
                  "reason", dict(c.closed))
        yield _by("culex_tls_handshake_failures", "Failed TLS handshakes, by OpenSSL's "
                  "reason.", "reason", dict(c.tls_failures))
        yield _counter("culex_auth_successes", "Logins accepted by an authenticator.",
                       c.auth_successes)
        yield _counter("culex_auth_failures", "Logins refused.", c.auth_failures)
        yield _counter("culex_auth_throttled", "Login attempts made to wait after failures "
                       "from their address.", c.auth_throttled)
        yield _counter("culex_sessions_expired", "Sessions ended by their expiry interval.",
                       c.sessions_expired)
        open_now = GaugeMetricFamily("culex_listener_connections",
                                     "Connections open on each listener.",
                                     labels=["listener", "protocol"])
        for listener in self._listeners:
            open_now.add_metric([listener.name, listener.protocol], listener.connections())
        yield open_now

    def _holdings(self, g: Gauges) -> Iterator[Metric]:
        yield _gauge("culex_clients_connected", "Clients connected now.", g.connected)
        yield _gauge("culex_clients_connected_peak", "The most clients connected at once.",
                     g.connected_peak)
        sessions = GaugeMetricFamily("culex_sessions", "Sessions held, by whether their "
                                     "client is connected.", labels=["state"])
        sessions.add_metric(["online"], g.connected)
        sessions.add_metric(["offline"], g.sessions - g.connected)
        yield sessions
        yield _gauge("culex_subscriptions", "Subscriptions, shared ones included.",
                     g.subscriptions)
        yield _gauge("culex_shared_subscriptions", "Members of shared subscription groups.",
                     g.shared_subscriptions)
        yield _gauge("culex_retained_messages", "Retained messages.", g.retained_messages)
        yield _gauge("culex_retained_payload_bytes", "Payload bytes of retained messages.",
                     g.retained_bytes)
        yield _gauge("culex_queued_messages", "Messages waiting in sessions' queues.",
                     g.queued_messages)
        yield _gauge("culex_queued_payload_bytes", "Payload bytes of queued messages.",
                     g.queued_bytes)
        yield _gauge("culex_inflight_messages", "Messages sent to clients and not yet "
                     "acknowledged.", g.inflight_messages)


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class Exposition:
    """The text a scraper gets: the broker's metrics and the process's."""

    def __init__(self, collector: BrokerCollector) -> None:
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(collector)
        self._registry.register(ProcessCollector(registry=None))

    def render(self) -> bytes:
        return generate_latest(self._registry)
