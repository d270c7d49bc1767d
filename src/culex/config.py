"""Typed, validated configuration: a TOML file, then command-line overrides.

Option names are Mosquitto's wherever Mosquitto has the same option, so that users carry their
knowledge (and much of their mosquitto.conf) over. An unknown key or a value of the wrong type
is an error that names the key: nothing is silently ignored.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .bridgeconfig import BridgeConfig, BridgeConfigError, bridge_from_mapping
from .clusterconfig import ClusterConfig, ClusterConfigError, cluster_from_mapping
from .observability import parse_dest
from .protocol import MAX_PACKET_SIZE

# The protocol's own ceiling (MQTT 1.5.5: 4-byte Remaining Length + header), defined once.
PROTOCOL_MAX_PACKET_SIZE = MAX_PACKET_SIZE
DEFAULT_PORT = 1883


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or ignored) in a configuration, where it was written if known."""

    reason: str
    option: str = ""
    file: str | None = None
    line: int | None = None
    warning: bool = False  # read but not applied; the broker starts anyway

    def __str__(self) -> str:
        where = self.file or ""
        if self.file and self.line:
            where += f":{self.line}"
        return f"{where}: {self.reason}" if where else self.reason


class ConfigError(ValueError):
    """Configuration problems, with messages meant for the person who wrote the file."""

    def __init__(self, problems: str | Problem | list[Problem]) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = problems
        super().__init__("\n".join(map(str, problems)))


LOOPBACK = ("127.", "::1", "localhost")


@dataclass
class ListenerConfig:
    port: int = DEFAULT_PORT
    # Like Mosquitto 2, nothing is exposed by accident: loopback unless told otherwise.
    bind_address: str = "127.0.0.1"
    # Overrides the global allow_anonymous for this listener.
    allow_anonymous: bool | None = None
    # TLS: a listener with a certfile speaks TLS only (never plain TCP as a fallback).
    certfile: str | None = None
    keyfile: str | None = None
    cafile: str | None = None  # CAs that sign client certificates
    require_certificate: bool = False
    use_identity_as_username: bool = False  # the certificate's CN becomes the user name
    use_subject_as_username: bool = False  # its whole subject does
    tls_version: str = "tlsv1.2"  # the minimum: tlsv1.2 or tlsv1.3
    ciphers: str | None = None  # OpenSSL cipher list for TLS 1.2
    # "mqtt" (MQTT over TCP, or TLS with certfile) or "websockets" (MQTT over WebSockets, or
    # secure WebSockets with certfile), as in Mosquitto; or "http" (metrics and health, or
    # HTTPS with certfile).
    protocol: str = "mqtt"
    # An http listener that also serves the dashboard (login: password-file users whom the
    # ACL lets read $SYS/#).
    dashboard: bool = False

    @property
    def tls(self) -> bool:
        return self.certfile is not None

    @property
    def is_loopback(self) -> bool:
        return self.bind_address.startswith(LOOPBACK)

    @property
    def name(self) -> str:
        return f"{self.bind_address}:{self.port}"

    def validate(self) -> None:
        """ConfigError listing every problem, each with its option."""
        problems: list[Problem] = []

        def problem(option: str, reason: str) -> None:
            problems.append(Problem(f"listener {self.name}: {reason}", option))

        if not 0 <= self.port <= 65535:
            problems.append(Problem(f"listener port {self.port} is not in 0..65535", "port"))
        if (self.certfile is None) != (self.keyfile is None):
            problem("certfile" if self.certfile is None else "keyfile",
                    "certfile and keyfile go together")
        tls_only = {"cafile": self.cafile, "require_certificate": self.require_certificate,
                    "use_identity_as_username": self.use_identity_as_username,
                    "use_subject_as_username": self.use_subject_as_username,
                    "ciphers": self.ciphers}
        for key, value in tls_only.items():
            if value and not self.tls:
                problem(key, f"{key} needs certfile and keyfile")
        if self.require_certificate and not self.cafile:
            problem("require_certificate", "require_certificate needs a cafile")
        if ((self.use_identity_as_username or self.use_subject_as_username)
                and not self.require_certificate):
            problem("use_identity_as_username", "use_identity_as_username and "
                    "use_subject_as_username need require_certificate = true")
        if self.protocol not in ("mqtt", "websockets", "http"):
            problem("protocol", "protocol must be mqtt, websockets or http")
        if self.protocol == "http" and (self.use_identity_as_username
                                        or self.use_subject_as_username):
            problem("use_identity_as_username", "an http listener authenticates with the "
                    "password file (HTTP basic), not with certificate names")
        if self.tls_version not in ("tlsv1.2", "tlsv1.3"):
            problem("tls_version", "tls_version must be tlsv1.2 or tlsv1.3")
        if self.dashboard and self.protocol != "http":
            problem("dashboard", "the dashboard is served by an http listener")
        if problems:
            raise ConfigError(problems)


@dataclass
class Config:
    listeners: list[ListenerConfig] = field(default_factory=lambda: [ListenerConfig()])
    # Links to other brokers ([[bridge]] tables; see culex.bridgeconfig).
    bridges: list[BridgeConfig] = field(default_factory=list)
    # Several nodes acting as one broker on NATS JetStream ([cluster]; see docs/cluster.md).
    cluster: ClusterConfig | None = None
    # Whether clients that present no credentials may connect. Unset: yes on loopback
    # listeners, no on any other (a listener's own allow_anonymous overrides both).
    allow_anonymous: bool | None = None
    # Mosquitto-format files (see culex passwd); reloaded on SIGHUP.
    password_file: str | None = None
    acl_file: str | None = None
    # Users (of the password file) who may sign in to the dashboard. Unset: those whom the
    # ACL lets read $SYS/# (as for /metrics).
    dashboard_users: list[str] | None = None
    # Largest keep-alive a client may ask for; v5 clients are told to use this instead, v3
    # clients asking for more are refused (Mosquitto's behaviour). 65535 = the protocol's limit.
    max_keepalive: int = 65535
    # Outgoing QoS 1/2 messages unacknowledged at once per client (0 = only the client's
    # Receive Maximum). 20 is Mosquitto's default: enough to fill a LAN link, small enough that
    # a slow client's backlog waits in the queue, where limits apply.
    max_inflight_messages: int = 20
    # Messages queued per client beyond the in-flight window, online or offline (0 = no limit).
    # Mosquitto's default: a bound on memory per absent client.
    max_queued_messages: int = 1000
    max_queued_bytes: int = 0
    # Whether QoS 0 messages are queued for offline persistent sessions (Mosquitto: false).
    queue_qos0_messages: bool = False
    # Largest payload accepted, in bytes (0 = the protocol's maximum).
    message_size_limit: int = 0
    # Largest packet accepted, in bytes (0 = the protocol's maximum, 268,435,460).
    max_packet_size: int = 0
    # Bytes that large packets (64 KB and more) being received may take, all clients together;
    # a packet that does not fit is refused (0x97) before its body is kept (0 = no limit).
    large_packet_memory: int = 512 << 20
    # Simultaneous client connections (-1 = no limit, as in Mosquitto).
    max_connections: int = -1
    max_qos: int = 2
    retain_available: bool = True
    # What MQTT 5 clients are told is supported (CONNACK); a SUBSCRIBE using what is not is a
    # protocol error for them (DISCONNECT 0xA2, 0x9E, 0xA1), a failed subscription for 3.x.
    wildcard_subscription_available: bool = True
    shared_subscription_available: bool = True
    subscription_identifiers_available: bool = True
    # Sent in CONNACK to MQTT 5 clients that ask for it (Request Response Information): the
    # basis of their response topics, for instance "responses/" (MQTT 5.0 4.10).
    response_information: str | None = None
    # Topic aliases a v5 client may use towards the broker (Mosquitto's default is 10).
    max_topic_alias: int = 10
    # Whether MQTT 5 clients that accept topic aliases (Topic Alias Maximum) are sent them: the
    # first topics each client receives get an alias, later messages carry two bytes instead.
    topic_alias_out: bool = True
    # Seconds after which a disconnected persistent v3 session is dropped (None = never).
    persistent_client_expiration: int | None = None
    # Seconds a new connection has to send its CONNECT before it is closed.
    connect_timeout: float = 10.0
    # Failed logins from one address slow that address down: each further attempt waits
    # 0.1 s, doubled per recent failure, up to this many seconds (0: no slowing down).
    # An address's failures are forgotten a minute after its last one.
    max_auth_failure_delay: float = 10.0
    log_level: str = "info"
    # "text": human lines; "json": one JSON object per line (time, level, event, client_id,
    # peer, reason, message).
    log_format: str = "text"
    # stderr, stdout, none, or "file PATH" (reopened on SIGHUP), as Mosquitto's log_dest.
    log_dest: str = "stderr"
    # A file to write the broker's process id to while it runs (as Mosquitto's pid_file).
    pid_file: str | None = None
    # Seconds between updates of the $SYS topics (0: no $SYS topics), as in Mosquitto.
    sys_interval: int = 10
    # Persistent sessions, their messages and retained messages are kept on disk (SQLite)
    # in persistence_location (default: $STATE_DIRECTORY, else $XDG_STATE_HOME/culex, else
    # ~/.local/state/culex). Off: nothing survives a restart.
    persistence: bool = True
    persistence_location: str | None = None
    # "full": a QoS 1/2 message is acknowledged once it is on disk for every persistent
    # session it goes to. "periodic": written every autosave_interval seconds, acknowledged at
    # once; a crash loses what was acknowledged since the last write.
    durability: str = "full"
    autosave_interval: float = 1.0

    def anonymous_allowed(self, listener: ListenerConfig | None) -> bool:
        if listener is not None and listener.allow_anonymous is not None:
            return listener.allow_anonymous
        if self.allow_anonymous is not None:
            return self.allow_anonymous
        return listener is None or listener.is_loopback

    @property
    def packet_size_limit(self) -> int:
        return self.max_packet_size or PROTOCOL_MAX_PACKET_SIZE

    def validate(self) -> None:
        """ConfigError listing every problem found."""
        problems: list[Problem] = []
        if not self.listeners:
            problems.append(Problem("at least one listener is needed", "listener"))
        for index, listener in enumerate(self.listeners):
            try:
                listener.validate()
            except ConfigError as exc:
                problems += [replace(problem, option=f"listener.{index}.{problem.option}")
                             for problem in exc.problems]
        checks: list[tuple[str, bool]] = [
            ("max_keepalive", 0 <= self.max_keepalive <= 65535),
            ("max_inflight_messages", 0 <= self.max_inflight_messages <= 65535),
            ("max_queued_messages", self.max_queued_messages >= 0),
            ("max_queued_bytes", self.max_queued_bytes >= 0),
            ("message_size_limit", 0 <= self.message_size_limit <= 268_435_455),
            ("max_packet_size", self.max_packet_size == 0
             or 20 <= self.max_packet_size <= PROTOCOL_MAX_PACKET_SIZE),
            ("max_connections", self.max_connections >= -1),
            ("large_packet_memory", self.large_packet_memory >= 0),
            ("max_qos", self.max_qos in (0, 1, 2)),
            ("max_topic_alias", 0 <= self.max_topic_alias <= 65535),
            ("persistent_client_expiration", self.persistent_client_expiration is None
             or self.persistent_client_expiration >= 0),
            ("connect_timeout", self.connect_timeout > 0),
            ("max_auth_failure_delay", self.max_auth_failure_delay >= 0),
            ("sys_interval", self.sys_interval >= 0),
            ("log_level", self.log_level.lower() in ("debug", "info", "warning", "error")),
            ("log_format", self.log_format in ("text", "json")),
            ("durability", self.durability in ("full", "periodic")),
            ("autosave_interval", self.autosave_interval > 0),
        ]
        for name, ok in checks:
            if not ok:
                problems.append(Problem(f"{name} = {getattr(self, name)!r} is out of range",
                                        name))
        try:
            parse_dest(self.log_dest)
        except ValueError as exc:
            problems.append(Problem(str(exc), "log_dest"))
        if problems:
            raise ConfigError(problems)


_DURATION = re.compile(r"^(\d+)([smhdwy]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def parse_duration(value: object, key: str) -> int:
    """Seconds, from an integer or a Mosquitto-style duration such as ``"2h"`` or ``"14d"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if match:
            return int(match.group(1)) * _UNITS[match.group(2)]
    raise ConfigError(f"{key}: expected seconds or a duration like '12h', got {value!r}")


def _line_of(text: str, option: str) -> int | None:
    """The line (from 1) where a TOML document sets ``option`` ("key", "listener.N",
    "listener.N.key", "bridge.N", "cluster" or "cluster.key"), if it can be found; the
    table's header for a table as a whole."""
    lines = text.splitlines()
    parts = option.split(".")
    start, end = 0, len(lines)
    headers = [number for number, line in enumerate(lines) if line.strip().startswith("[")]
    table, index, rest = None, 0, parts[1:]
    if parts[0] == "cluster":
        table = re.compile(r"^\s*\[\s*cluster\s*\]")
    elif parts[0] in ("listener", "bridge") and len(parts) >= 2 and parts[1].isdigit():
        table = re.compile(rf"^\s*\[\[\s*{parts[0]}\s*\]\]")
        index, rest = int(parts[1]), parts[2:]
    tables = [number for number in headers if table.match(lines[number])] if table else []
    if index < len(tables):
        start = tables[index]
        end = next((number for number in headers if number > start), len(lines))
        if not rest or not rest[0]:
            return start + 1
        key = rest[0]
    elif table is not None and parts[0] != "cluster":
        return None
    else:  # a top-level option (or "cluster = ..." where a table belongs)
        end = headers[0] if headers else len(lines)
        key = parts[0]
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for number in range(start, end):
        if pattern.match(lines[number]):
            return number + 1
    return None


def parse_listen(value: str) -> ListenerConfig:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``:PORT``."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"--listen {value!r}: expected HOST:PORT")
    host = host.strip("[]") or "127.0.0.1"
    return ListenerConfig(port=int(port), bind_address=host)


def _coerce(key: str, expected: Any, value: Any) -> Any:
    if key == "persistent_client_expiration":
        return None if value is None else parse_duration(value, key)
    if expected is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if expected is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if expected is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if expected is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if expected is list:
        if not isinstance(value, list) or not all(isinstance(item, str) and item
                                                  for item in value):
            raise ConfigError(f"{key}: expected a list of names, got {value!r}")
        return value
    raise AssertionError(key)


_TYPES = {"bool": bool, "int": int, "float": float, "str": str, "int | None": int,
          "bool | None": bool, "str | None": str, "list[str] | None": list}


def config_from_mapping(data: dict[str, Any]) -> Config:
    """The configuration a TOML document describes; ConfigError lists every problem (each
    with its option: ``listener.N.key`` for the N-th listener's)."""
    config = Config()
    problems: list[Problem] = []
    known = {f.name: f for f in fields(Config)}
    for key, value in data.items():
        if key == "bridge":
            problems += _bridges(config, value)
            continue
        if key == "cluster":
            if not isinstance(value, dict):
                problems.append(Problem("cluster: expected a [cluster] table", key))
                continue
            try:
                config.cluster = cluster_from_mapping(value)
            except ClusterConfigError as exc:
                problems += [Problem(f"cluster: {reason}", f"cluster.{option}" if option
                                     else "cluster") for option, reason in exc.problems]
            continue
        if key == "listener":
            if not isinstance(value, list):
                problems.append(Problem("listener: expected [[listener]] tables", key))
                continue
            config.listeners = []
            for index, item in enumerate(value):
                listener, found = _listener(item, index)
                config.listeners.append(listener)
                problems += found
            continue
        spec = known.get(key)
        if spec is None or key in ("listeners", "bridges", "cluster"):
            problems.append(Problem(f"unknown option {key!r}", key))
            continue
        try:
            setattr(config, key, _coerce(key, _TYPES[str(spec.type)], value))
        except ConfigError as exc:
            problems += [replace(problem, option=key) for problem in exc.problems]
    try:
        config.validate()
    except ConfigError as exc:
        problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return config


def _bridges(config: Config, value: Any) -> list[Problem]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        return [Problem("bridge: expected [[bridge]] tables", "bridge")]
    problems = []
    for index, item in enumerate(value):
        try:
            config.bridges.append(bridge_from_mapping(item))
        except BridgeConfigError as exc:
            problems.append(Problem(str(exc), f"bridge.{index}"))
    return problems


def _listener(item: Any, index: int) -> tuple[ListenerConfig, list[Problem]]:
    listener = ListenerConfig()
    if not isinstance(item, dict):
        return listener, [Problem("listener: expected a table", f"listener.{index}")]
    problems: list[Problem] = []
    known = {f.name: f for f in fields(ListenerConfig)}
    for key, value in item.items():
        option = f"listener.{index}.{key}"
        spec = known.get(key)
        if spec is None:
            problems.append(Problem(f"unknown listener option {key!r}", option))
            continue
        try:
            setattr(listener, key, _coerce(f"listener.{key}", _TYPES[str(spec.type)], value))
        except ConfigError as exc:
            problems += [replace(problem, option=option) for problem in exc.problems]
    return listener, problems


def read_text(path: str) -> str:
    """A configuration file's text; ConfigError if it cannot be read."""
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}"
                          ) from None


def load_config(path: str | os.PathLike[str]) -> Config:
    """A TOML configuration file; ConfigError lists every problem with its line."""
    import tomllib  # only when there is a file to read

    name = os.fspath(path)
    text = read_text(name)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        raise ConfigError(Problem(f"not valid TOML: {exc}", "", name,
                                  int(found.group(1)) if found else None)) from None
    try:
        config = config_from_mapping(data)
    except ConfigError as exc:
        located = [replace(problem, file=name, line=_line_of(text, problem.option))
                   for problem in exc.problems]
        located.sort(key=lambda problem: problem.line or 0)
        raise ConfigError(located) from None
    # Relative file names are relative to the configuration file, wherever culex runs from.
    base = os.path.dirname(os.path.realpath(path))
    for holder, key in [(config, "password_file"), (config, "acl_file"),
                        (config, "persistence_location"), (config, "pid_file"),
                        *[(listener, key) for listener in config.listeners
                          for key in ("certfile", "keyfile", "cafile")]]:
        value = getattr(holder, key)
        if value is not None:
            setattr(holder, key, os.path.join(base, value))
    return config
