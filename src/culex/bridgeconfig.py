"""Bridge configuration: ``[[bridge]]`` tables in TOML, or Mosquitto's ``connection`` sections.

A bridge is a link from this broker to a remote one. Each ``topic`` rule says which messages
cross it, in which direction, at which QoS at most, and how their topics are rewritten:
``topic PATTERN [in|out|both] [QOS] [LOCAL_PREFIX REMOTE_PREFIX]`` as in Mosquitto, where the
local topic is LOCAL_PREFIX + PATTERN and the remote one REMOTE_PREFIX + PATTERN.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DIRECTIONS = ("in", "out", "both")


class BridgeConfigError(ValueError):
    pass


@dataclass(frozen=True)
class TopicRule:
    pattern: str
    direction: str = "out"
    qos: int = 0
    local_prefix: str = ""
    remote_prefix: str = ""

    @property
    def local_filter(self) -> str:
        return self.local_prefix + self.pattern

    @property
    def remote_filter(self) -> str:
        return self.remote_prefix + self.pattern

    def to_remote(self, topic: str) -> str:
        return self.remote_prefix + topic[len(self.local_prefix):]

    def to_local(self, topic: str) -> str:
        return self.local_prefix + topic[len(self.remote_prefix):]


def parse_topic_line(value: str) -> TopicRule:
    """Mosquitto's ``topic`` line: ``PATTERN [in|out|both] [QOS] [LOCAL REMOTE]``; a prefix
    written ``""`` is empty."""
    words = value.split()
    if not words:
        raise BridgeConfigError("topic needs a pattern")
    pattern, rest = words[0], words[1:]
    direction = rest[0] if rest else "out"
    if direction not in DIRECTIONS:
        raise BridgeConfigError(f"topic direction must be in, out or both, not {direction!r}")
    qos = 0
    if len(rest) > 1:
        if rest[1] not in ("0", "1", "2"):
            raise BridgeConfigError(f"topic QoS must be 0, 1 or 2, not {rest[1]!r}")
        qos = int(rest[1])
    local = remote = ""
    if len(rest) > 2:
        if len(rest) != 4:
            raise BridgeConfigError("topic takes both a local and a remote prefix, or neither")
        local, remote = (prefix if prefix != '""' else "" for prefix in rest[2:4])
    if pattern == '""':
        pattern = ""  # the prefixes alone name the topic
    rule = TopicRule(pattern, direction, qos, local, remote)
    check_rule(rule)
    return rule


def check_rule(rule: TopicRule) -> None:
    from .protocol import is_valid_topic_filter

    for name, value in (("local", rule.local_filter), ("remote", rule.remote_filter)):
        if not value or not is_valid_topic_filter(value):
            raise BridgeConfigError(f"topic {rule.pattern!r}: the {name} filter {value!r} is "
                                    "not a valid topic filter")
    for prefix in (rule.local_prefix, rule.remote_prefix):
        if "+" in prefix or "#" in prefix:
            raise BridgeConfigError("topic prefixes cannot hold wildcards")


@dataclass
class BridgeConfig:
    name: str
    addresses: list[tuple[str, int]] = field(default_factory=list)
    topics: list[TopicRule] = field(default_factory=list)
    remote_clientid: str = ""
    local_clientid: str = ""
    remote_username: str | None = None
    remote_password: str | None = None
    protocol_version: str = "mqttv311"  # or "mqttv50"
    try_private: bool = True
    cleansession: bool = False  # of the remote session
    notifications: bool = True
    notification_topic: str = ""
    keepalive_interval: int = 60
    restart_timeout: tuple[float, float] = (5.0, 30.0)  # backoff from, to (seconds)
    start_type: str = "automatic"  # automatic, lazy, once
    outgoing_retain: bool = True
    max_packet_size: int = 0
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    insecure: bool = False
    tls_version: str | None = None

    def __post_init__(self) -> None:
        if not self.remote_clientid:
            self.remote_clientid = self.name
        if not self.local_clientid:
            self.local_clientid = f"local.{self.remote_clientid}"
        if not self.notification_topic:
            self.notification_topic = f"$SYS/broker/connection/{self.remote_clientid}/state"

    def validate(self) -> None:
        where = f"bridge {self.name}"
        if not self.addresses:
            raise BridgeConfigError(f"{where}: an address is needed")
        if not self.topics:
            raise BridgeConfigError(f"{where}: at least one topic rule is needed")
        if self.protocol_version not in ("mqttv311", "mqttv50"):
            raise BridgeConfigError(f"{where}: bridge_protocol_version must be mqttv311 or "
                                    "mqttv50")
        if self.start_type not in ("automatic", "once"):
            raise BridgeConfigError(f"{where}: start_type must be automatic or once (lazy is "
                                    "not supported yet)")
        if (self.certfile is None) != (self.keyfile is None):
            raise BridgeConfigError(f"{where}: bridge_certfile and bridge_keyfile go together")
        if self.protocol_version == "mqttv311" and not self.try_private and self.loops():
            raise BridgeConfigError(
                f"{where}: messages would loop: with MQTT 3.1.1 and try_private false, what "
                "this broker sends on a topic that also comes back in is echoed forever. Use "
                "bridge_protocol_version mqttv50 (No Local), or try_private true towards a "
                "broker that understands it, or separate in and out topics")

    def loops(self) -> bool:
        """Whether a topic can go out and come back in over this link."""
        outgoing = [rule.remote_filter for rule in self.topics if rule.direction != "in"]
        incoming = [rule.remote_filter for rule in self.topics if rule.direction != "out"]
        return any(_overlap(a, b) for a in outgoing for b in incoming)


def _overlap(a: str, b: str) -> bool:
    """Whether two filters can match one topic (a sufficient check for equal levels)."""
    left, right = a.split("/"), b.split("/")
    for x, y in zip(left, right, strict=False):
        if x == "#" or y == "#":
            return True
        if x != y and "+" not in (x, y):
            return False
    return len(left) == len(right)


TOML_KEYS = {"name", "address", "addresses", "topic", "topics", "remote_clientid",
             "local_clientid", "remote_username", "remote_password", "protocol_version",
             "try_private", "cleansession", "notifications", "notification_topic",
             "keepalive_interval", "restart_timeout", "start_type", "outgoing_retain",
             "max_packet_size", "cafile", "certfile", "keyfile", "insecure", "tls_version"}


def parse_address(value: str) -> tuple[str, int]:
    host, sep, port = value.strip().rpartition(":")
    if not sep:
        return value.strip(), 1883
    if not port.isdigit():
        raise BridgeConfigError(f"address {value!r}: expected HOST or HOST:PORT")
    return host.strip("[]"), int(port)


def bridge_from_mapping(table: dict[str, object]) -> BridgeConfig:
    unknown = set(table) - TOML_KEYS
    if unknown:
        raise BridgeConfigError(f"unknown bridge option {sorted(unknown)[0]!r}")
    name = table.get("name")
    if not isinstance(name, str) or not name:
        raise BridgeConfigError("a bridge needs a name")
    values = dict(table)
    values.pop("name")
    addresses: list[tuple[str, int]] = []
    for key in ("address", "addresses"):
        raw = values.pop(key, None)
        items = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
        addresses += [parse_address(str(item)) for item in items]
    topics = [parse_topic_line(str(line)) for line in _as_list(values.pop("topic", []))
              + _as_list(values.pop("topics", []))]
    restart = values.pop("restart_timeout", None)
    bridge = BridgeConfig(name, addresses, topics, **values)  # type: ignore[arg-type]
    if restart is not None:
        bridge.restart_timeout = parse_restart(str(restart) if not isinstance(restart, list)
                                               else " ".join(map(str, restart)))
    bridge.validate()
    return bridge


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else [value]


def parse_restart(value: str) -> tuple[float, float]:
    """Mosquitto's ``restart_timeout``: ``BASE CAP`` (backoff) or one number (constant)."""
    words = value.split()
    try:
        numbers = [float(word) for word in words]
    except ValueError:
        raise BridgeConfigError(f"restart_timeout {value!r}: expected seconds") from None
    if len(numbers) == 1:
        return numbers[0], numbers[0]
    if len(numbers) == 2 and 0 < numbers[0] <= numbers[1]:
        return numbers[0], numbers[1]
    raise BridgeConfigError(f"restart_timeout {value!r}: expected BASE [CAP]")
