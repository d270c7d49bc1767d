"""Typed, validated configuration: a TOML file, then command-line overrides.

Option names are Mosquitto's wherever Mosquitto has the same option, so that users carry their
knowledge (and much of their mosquitto.conf) over. An unknown key or a value of the wrong type
is an error that names the key: nothing is silently ignored.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from typing import Any

from .protocol import MAX_PACKET_SIZE

# The protocol's own ceiling (MQTT 1.5.5: 4-byte Remaining Length + header), defined once.
PROTOCOL_MAX_PACKET_SIZE = MAX_PACKET_SIZE
DEFAULT_PORT = 1883


class ConfigError(ValueError):
    """A configuration problem, with a message meant for the person who wrote the file."""


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
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"listener port {self.port} is not in 0..65535")
        if (self.certfile is None) != (self.keyfile is None):
            raise ConfigError(f"listener {self.name}: certfile and keyfile go together")
        tls_only = {"cafile": self.cafile, "require_certificate": self.require_certificate,
                    "use_identity_as_username": self.use_identity_as_username,
                    "use_subject_as_username": self.use_subject_as_username,
                    "ciphers": self.ciphers}
        for key, value in tls_only.items():
            if value and not self.tls:
                raise ConfigError(f"listener {self.name}: {key} needs certfile and keyfile")
        if self.require_certificate and not self.cafile:
            raise ConfigError(f"listener {self.name}: require_certificate needs a cafile")
        if ((self.use_identity_as_username or self.use_subject_as_username)
                and not self.require_certificate):
            raise ConfigError(f"listener {self.name}: use_identity_as_username and "
                              "use_subject_as_username need require_certificate = true")
        if self.protocol not in ("mqtt", "websockets", "http"):
            raise ConfigError(f"listener {self.name}: protocol must be mqtt, websockets or "
                              "http")
        if self.protocol == "http" and (self.use_identity_as_username
                                        or self.use_subject_as_username):
            raise ConfigError(f"listener {self.name}: an http listener authenticates with "
                              "the password file (HTTP basic), not with certificate names")
        if self.tls_version not in ("tlsv1.2", "tlsv1.3"):
            raise ConfigError(f"listener {self.name}: tls_version must be tlsv1.2 or tlsv1.3")


@dataclass
class Config:
    listeners: list[ListenerConfig] = field(default_factory=lambda: [ListenerConfig()])
    # Whether clients that present no credentials may connect. Unset: yes on loopback
    # listeners, no on any other (a listener's own allow_anonymous overrides both).
    allow_anonymous: bool | None = None
    # Mosquitto-format files (see culex passwd); reloaded on SIGHUP.
    password_file: str | None = None
    acl_file: str | None = None
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
        if not self.listeners:
            raise ConfigError("at least one listener is needed")
        for listener in self.listeners:
            listener.validate()
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
                raise ConfigError(f"{name} = {getattr(self, name)!r} is out of range")
        try:
            parse_dest(self.log_dest)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None


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


def parse_dest(dest: str) -> tuple[str, str | None]:
    """("stderr" | "stdout" | "file" | "none", the file's path); ValueError if not one."""
    kind, _, path = dest.strip().partition(" ")
    if kind in ("stderr", "stdout", "none") and not path:
        return kind, None
    if kind == "file" and path.strip():
        return kind, path.strip()
    raise ValueError(f"log_dest {dest!r}: expected stderr, stdout, none or 'file PATH'")


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
    raise AssertionError(key)


_TYPES = {"bool": bool, "int": int, "float": float, "str": str, "int | None": int,
          "bool | None": bool, "str | None": str}


def config_from_mapping(data: dict[str, Any]) -> Config:
    config = Config()
    known = {f.name: f for f in fields(Config)}
    for key, value in data.items():
        if key == "listener":
            if not isinstance(value, list):
                raise ConfigError("listener: expected [[listener]] tables")
            config.listeners = [_listener(item) for item in value]
            continue
        spec = known.get(key)
        if spec is None or key == "listeners":
            raise ConfigError(f"unknown option {key!r}")
        setattr(config, key, _coerce(key, _TYPES[str(spec.type)], value))
    config.validate()
    return config


def _listener(item: Any) -> ListenerConfig:
    if not isinstance(item, dict):
        raise ConfigError("listener: expected a table")
    listener = ListenerConfig()
    known = {f.name: f for f in fields(ListenerConfig)}
    for key, value in item.items():
        spec = known.get(key)
        if spec is None:
            raise ConfigError(f"unknown listener option {key!r}")
        setattr(listener, key, _coerce(f"listener.{key}", _TYPES[str(spec.type)], value))
    return listener


def load_config(path: str | os.PathLike[str]) -> Config:
    import tomllib  # only when there is a file to read

    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    try:
        config = config_from_mapping(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    # Relative file names are relative to the configuration file, wherever culex runs from.
    base = os.path.dirname(os.path.realpath(path))
    for holder, key in [(config, "password_file"), (config, "acl_file"),
                        (config, "persistence_location"),
                        *[(listener, key) for listener in config.listeners
                          for key in ("certfile", "keyfile", "cafile")]]:
        value = getattr(holder, key)
        if value is not None:
            setattr(holder, key, os.path.join(base, value))
    return config
