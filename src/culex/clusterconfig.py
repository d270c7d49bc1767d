"""Cluster configuration: the ``[cluster]`` table (docs/cluster.md). Without it, culex is a
single-node broker and nothing of NATS is imported."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit


class ClusterConfigError(ValueError):
    """What is wrong with a [cluster] table: for each problem, the option it is about ("" for
    the table as a whole) and the reason, which names it."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(reason for _, reason in problems))
        self.problems = problems


@dataclass
class ClusterConfig:
    # NATS servers to connect to (any one is enough; the client learns the others).
    servers: list[str] = field(default_factory=lambda: ["nats://127.0.0.1:4222"])
    # This node's name, unique in the cluster: it names its JetStream consumer.
    node: str = field(default_factory=lambda: _default_node())
    # JetStream replicas of culex's streams: 1 for one NATS server, 3 in production.
    replicas: int = 1
    # Subjects start with it: several culex clusters may share one NATS system.
    prefix: str = "culex"
    # Longest NATS subject culex makes: topics whose subject is longer are refused (the
    # server's max_control_line, 4 KB by default, bounds it).
    max_subject: int = 3500
    # Seconds QoS 1/2 messages are kept in JetStream (what an offline session can catch up).
    message_retention: float = 86400.0
    # Seconds after which JetStream gives a message again when the node it went to said
    # nothing (that node died): how soon a resumed session gets what was in flight.
    redeliver_after: float = 10.0
    # Credentials and TLS of the NATS connection.
    user: str | None = None
    password: str | None = None
    token: str | None = None
    credentials: str | None = None  # a .creds file (NATS decentralised auth)
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None

    def validate(self) -> None:
        problems: list[tuple[str, str]] = []
        if not self.servers:
            problems.append(("servers", "servers: at least one NATS server is needed"))
        for server in self.servers:
            parts = urlsplit(server)
            if parts.scheme not in ("nats", "tls") or not parts.hostname:
                problems.append(("servers",
                                 f"servers: {server!r} is not a nats:// or tls:// address"))
        if not self.node or any(c in self.node for c in ". *>\t\r\n"):
            problems.append(("node", f"node: {self.node!r} must be a name without dots, "
                                     "spaces, * or >"))
        if not 1 <= self.replicas <= 5:
            problems.append(("replicas", "replicas: 1 to 5"))
        if not self.prefix or not all(c.isalnum() or c in "-_" for c in self.prefix):
            problems.append(("prefix", "prefix: letters, digits, - and _"))
        if self.max_subject < 64:
            problems.append(("max_subject", "max_subject: at least 64"))
        if self.message_retention <= 0:
            problems.append(("message_retention", "message_retention: more than 0 seconds"))
        if not 1 <= self.redeliver_after <= 3600:
            problems.append(("redeliver_after", "redeliver_after: 1 to 3600 seconds"))
        if (self.user is None) != (self.password is None):
            problems.append(("user", "user and password go together"))
        if (self.tls_cert is None) != (self.tls_key is None):
            problems.append(("tls_cert", "tls_cert and tls_key go together"))
        if problems:
            raise ClusterConfigError(problems)


def _default_node() -> str:
    name = socket.gethostname().split(".")[0]
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name) or "culex"


def cluster_from_mapping(table: dict[str, Any]) -> ClusterConfig:
    known = {spec.name: spec for spec in fields(ClusterConfig)}
    config = ClusterConfig()
    for key, value in table.items():
        spec = known.get(key)
        if spec is None:
            raise ClusterConfigError([(key, f"unknown cluster option {key!r}")])
        kind = str(spec.type)
        if key == "servers":
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ClusterConfigError([(key, "servers: a list of nats:// addresses")])
        elif kind.startswith("int"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ClusterConfigError([(key, f"{key}: expected an integer")])
        elif kind.startswith("float"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ClusterConfigError([(key, f"{key}: expected a number")])
            value = float(value)
        elif not isinstance(value, str):
            raise ClusterConfigError([(key, f"{key}: expected a string")])
        setattr(config, key, value)
    config.validate()
    return config
