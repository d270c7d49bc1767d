"""Mosquitto's configuration files, read as they are (``culex serve --config mosquitto.conf``).

The common subset maps onto culex's own options with Mosquitto 2's meaning, defaults included:
``listener 1883`` listens on every address; once any listener is configured, anonymous clients
are refused unless ``allow_anonymous true``; persistence is off unless ``persistence true``;
``per_listener_settings`` scopes the authentication options; ``include_dir`` reads the
directory's ``*.conf`` files in sorted order; file names are used as written (Mosquitto does
not make them relative to the file). An option culex does not implement is reported, one
warning per line, and the broker starts without it, unless ignoring it would let in someone
Mosquitto would have kept out (an authentication plugin, a certificate revocation list, a
mount point ...): then the broker refuses to start and says why. A line Mosquitto itself would
not understand is an error, as it is for Mosquitto.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .config import Config, ConfigError, ListenerConfig, Problem, parse_duration, read_text

ALL_ADDRESSES = "0.0.0.0"

_INTS = {"max_queued_messages", "max_queued_bytes", "max_inflight_messages",
         "message_size_limit", "max_packet_size", "max_keepalive", "sys_interval",
         "max_topic_alias", "max_qos", "max_connections"}
_BOOLS = {"queue_qos0_messages", "retain_available", "persistence"}
_LISTENER_BOOLS = {"require_certificate", "use_identity_as_username", "use_subject_as_username"}
_LISTENER_TEXTS = {"certfile", "keyfile", "cafile", "ciphers"}
_SECURITY = ("auth_opt_", "plugin_opt_")
# Mosquitto options that culex does not implement, and why starting without them would let
# in someone Mosquitto keeps out.
_REFUSED = {
    "plugin": "authentication and access plugins are Mosquitto's own (culex has a Python "
              "plugin interface: see the README)",
    "auth_plugin": "authentication plugins are Mosquitto's own",
    "global_plugin": "plugins are Mosquitto's own",
    "psk_file": "TLS pre-shared keys are not supported",
    "psk_hint": "TLS pre-shared keys are not supported",
    "capath": "a CA directory is not supported: put the CAs in one cafile",
    "crlfile": "certificate revocation lists are not supported: revoked certificates "
               "would be accepted",
    "mount_point": "mount points are not supported: clients of this listener would share "
                   "the topics of all the others",
    "use_username_as_clientid": "not supported: ACL patterns with %c would see other "
                                "client ids",
    "clientid_prefixes": "not supported: clients Mosquitto refuses would be accepted",
    "bind_interface": "not supported: the listener would be reachable on every interface",
    "tls_engine": "hardware TLS engines are not supported",
    "tls_keyform": "hardware TLS engines are not supported",
    "tls_engine_kpass_sha1": "hardware TLS engines are not supported",
}
# Mosquitto options culex leaves aside, with what that means.
_IGNORED = {
    "allow_duplicate_messages": "culex always sends overlapping subscriptions one copy "
                                "(MQTT 3.3.4-2)",
    "autosave_on_changes": "culex writes at every change (or every autosave_interval)",
    "persistence_file": "culex names its own file in persistence_location",
    "log_facility": "culex does not log to syslog",
    "log_timestamp": "culex's log lines always carry a timestamp",
    "log_timestamp_format": "culex's timestamp format is fixed",
    "max_inflight_bytes": "not supported; max_inflight_messages applies",
    "memory_limit": "not supported; queue limits bound memory per client",
    "upgrade_outgoing_qos": "not supported: messages keep their QoS",
    "websockets_log_level": "the websockets library logs warnings only",
    "websockets_headers_size": "the websockets library's limits apply",
    "http_dir": "culex serves no files on WebSocket listeners",
    "dhparamfile": "culex's TLS uses elliptic-curve key exchange",
    "ciphers_tls1.3": "OpenSSL's TLS 1.3 cipher suites apply",
    "socket_domain": "the listener binds as bind_address says",
    "auth_plugin_deny_special_chars": "no Mosquitto plugins in culex",
    "check_retain_source": "culex checks the ACL at every delivery, retained ones included",
    "allow_zero_length_clientid": "culex accepts empty client ids as the protocol allows",
    "enable_control_api": "no control API",
}
_BRIDGE = {"connection", "address", "addresses", "topic", "cleansession",
           "local_cleansession", "clientid", "remote_clientid", "local_clientid",
           "keepalive_interval", "idle_timeout", "local_password", "local_username",
           "notifications", "notifications_local_only", "notification_topic",
           "remote_password", "remote_username", "password", "username", "restart_timeout",
           "round_robin", "start_type", "threshold", "try_private"}
_LOG_LEVELS = {"debug": "debug", "all": "debug", "subscribe": "info", "unsubscribe": "info",
               "websockets": "info", "information": "info", "notice": "info",
               "warning": "warning", "error": "error"}
_RANK = {"debug": 0, "info": 1, "warning": 2, "error": 3}


@dataclass
class _Security:
    """The authentication options of one scope: the whole broker, or one listener."""

    allow_anonymous: bool | None = None
    password_file: tuple[str, str, int] | None = None  # value, file, line
    acl_file: tuple[str, str, int] | None = None


@dataclass
class _Reader:
    per_listener: bool
    config: Config = field(default_factory=lambda: Config(listeners=[], persistence=False))
    default: ListenerConfig | None = None  # from port / bind_address
    current: ListenerConfig | None = None  # the last `listener` line's
    security: dict[int, _Security] = field(default_factory=dict)  # id(listener) or 0
    problems: list[Problem] = field(default_factory=list)  # errors
    notes: list[Problem] = field(default_factory=list)  # warnings
    log_types: list[str] = field(default_factory=list)
    log_dest: str | None = None
    connections: list[int] = field(default_factory=list)
    bridges: list[dict[str, object]] = field(default_factory=list)  # one per connection
    bridge: dict[str, object] | None = None  # the connection the lines are about
    seen_autosave = False

    def here(self) -> ListenerConfig:
        """The listener that listener options apply to now."""
        if self.current is not None:
            return self.current
        if self.default is None:
            self.default = ListenerConfig(bind_address=ALL_ADDRESSES)
        return self.default

    def scope(self) -> _Security:
        key = id(self.here()) if self.per_listener else 0
        return self.security.setdefault(key, _Security())


def looks_like_mosquitto(text: str) -> bool:
    """Whether a configuration file is in Mosquitto's format rather than TOML: its first
    meaningful line is ``option value`` rather than ``key = value`` or a ``[table]``."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("["):
            return False
        head = stripped.split(None, 1)[0]
        return "=" not in head and not stripped[len(head):].lstrip().startswith("=")
    return False


def load_mosquitto_config(path: str) -> tuple[Config, list[Problem]]:
    """The configuration of a mosquitto.conf and the warnings about it; ConfigError lists
    every error (and the warnings with them)."""
    text = read_text(path)
    per_listener = any(line.split()[:2] == ["per_listener_settings", "true"]
                       for line in text.splitlines())
    reader = _Reader(per_listener)
    _read_lines(reader, path, text, depth=0)
    _finish(reader)
    if reader.problems:
        raise ConfigError(reader.problems + reader.notes)
    try:
        reader.config.validate()
    except ConfigError as exc:
        raise ConfigError([*exc.problems, *reader.notes]) from None
    return reader.config, reader.notes


def _read_lines(reader: _Reader, path: str, text: str, depth: int) -> None:
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        option, _, value = line.partition(" ")
        value = value.strip()
        try:
            if option == "include_dir":
                _include(reader, value, depth)
            else:
                _apply(reader, option, value)
        except _Refused as exc:
            reader.problems.append(Problem(str(exc), option, path, number))
        except _Ignored as exc:
            reader.notes.append(Problem(f"ignored: {option}: {exc}", option, path, number,
                                        warning=True))
        except (ValueError, ConfigError) as exc:
            reader.problems.append(Problem(f"{option}: {exc}", option, path, number))
        else:
            if option in ("password_file", "acl_file"):
                # Where they were set: checked later for per-listener consistency.
                scope = reader.scope()
                setattr(scope, option, (value, path, number))


def _include(reader: _Reader, directory: str, depth: int) -> None:
    if depth > 4:
        raise ValueError("include_dir nested too deeply")
    try:
        names = sorted(name for name in os.listdir(directory) if name.endswith(".conf"))
    except OSError as exc:
        raise ValueError(f"cannot read directory {directory}: {exc.strerror}") from None
    for name in names:
        included = os.path.join(directory, name)
        _read_lines(reader, included, read_text(included), depth + 1)


class _Refused(Exception):
    pass


class _Ignored(Exception):
    pass


def _bool(value: str) -> bool:
    if value not in ("true", "false"):
        raise ValueError(f"expected true or false, got {value!r}")
    return value == "true"


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"expected an integer, got {value!r}") from None


def _apply(reader: _Reader, option: str, value: str) -> None:
    config = reader.config
    if option in _REFUSED or option.startswith(_SECURITY):
        reason = _REFUSED.get(option, "authentication plugin options are Mosquitto's own")
        raise _Refused(f"{option}: {reason}; culex will not start without it")
    if option in _IGNORED:
        raise _Ignored(_IGNORED[option])
    if option == "connection":
        reader.bridge = {"name": value}
        reader.bridges.append(reader.bridge)
        return
    if reader.bridge is not None and (option in _BRIDGE or option.startswith("bridge_")):
        _bridge_option(reader.bridge, option, value)
        return
    if option in _BRIDGE or option.startswith("bridge_"):
        raise ValueError("a bridge option before any connection line")
    if option == "listener":
        reader.bridge = None
        port, _, address = value.partition(" ")
        reader.current = ListenerConfig(port=_int(port),
                                        bind_address=address.strip() or ALL_ADDRESSES)
        config.listeners.append(reader.current)
    elif option == "port":
        if reader.current is not None:
            raise ValueError("port belongs before the first listener line (use listener)")
        reader.here().port = _int(value)
    elif option == "bind_address":
        reader.here().bind_address = value
    elif option == "protocol":
        if value not in ("mqtt", "websockets"):
            raise ValueError(f"expected mqtt or websockets, got {value!r}")
        reader.here().protocol = value
    elif option in _LISTENER_BOOLS:
        setattr(reader.here(), option, _bool(value))
    elif option in _LISTENER_TEXTS:
        setattr(reader.here(), option, value)
    elif option == "tls_version":
        _tls_version(reader, value)
    elif option == "allow_anonymous":
        reader.scope().allow_anonymous = _bool(value)
    elif option in ("password_file", "acl_file"):
        pass  # recorded by the caller, with its place
    elif option == "per_listener_settings":
        _bool(value)  # read before the other lines
    elif option == "max_connections":
        reader.connections.append(_int(value))
    elif option in _INTS:
        setattr(config, option, _int(value))
    elif option in _BOOLS:
        setattr(config, option, _bool(value))
    else:
        _general(reader, option, value)


def _general(reader: _Reader, option: str, value: str) -> None:
    config = reader.config
    if option == "persistence_location":
        config.persistence_location = value
    elif option == "autosave_interval":
        # Mosquitto saves every this many seconds: so does culex, rather than at each change.
        config.durability = "periodic"
        config.autosave_interval = float(_int(value))
    elif option == "persistent_client_expiration":
        config.persistent_client_expiration = parse_duration(value, option)
    elif option == "log_dest":
        kind = value.split(" ", 1)[0]
        if kind not in ("stderr", "stdout", "file", "none"):
            raise _Ignored(f"culex cannot log to {kind}")
        if reader.log_dest is not None:
            raise _Ignored(f"culex logs to one place: {reader.log_dest}")
        reader.log_dest = value
    elif option == "log_type":
        if value not in (*_LOG_LEVELS, "none"):
            raise ValueError(f"unknown log type {value!r}")
        reader.log_types.append(value)
    elif option == "pid_file":
        config.pid_file = value
    elif option == "user":
        if value != "root" and hasattr(os, "geteuid") and os.geteuid() == 0:
            raise _Refused(f"user {value}: culex does not drop privileges itself; run it as "
                           f"{value} (the systemd unit in the repository does)")
    elif option in ("connection_messages", "set_tcp_nodelay"):
        if not _bool(value):
            raise _Ignored("culex always does this")
    else:
        raise ValueError("unknown option (Mosquitto would refuse it too)")


_BRIDGE_TEXTS = {"remote_clientid": "remote_clientid", "clientid": "remote_clientid",
                 "local_clientid": "local_clientid", "remote_username": "remote_username",
                 "username": "remote_username", "remote_password": "remote_password",
                 "password": "remote_password", "notification_topic": "notification_topic",
                 "start_type": "start_type", "bridge_protocol_version": "protocol_version",
                 "bridge_cafile": "cafile", "bridge_certfile": "certfile",
                 "bridge_keyfile": "keyfile", "bridge_tls_version": "tls_version"}
_BRIDGE_BOOLS = {"try_private": "try_private", "cleansession": "cleansession",
                 "notifications": "notifications", "bridge_insecure": "insecure",
                 "bridge_outgoing_retain": "outgoing_retain"}
_BRIDGE_INTS = {"keepalive_interval": "keepalive_interval",
                "bridge_max_packet_size": "max_packet_size"}


def _bridge_option(bridge: dict[str, object], option: str, value: str) -> None:
    """One line of a ``connection`` section, into the bridge's TOML-shaped table."""
    if option in ("address", "addresses"):
        addresses = bridge.setdefault("addresses", [])
        assert isinstance(addresses, list)
        addresses += value.split()
    elif option == "topic":
        topics = bridge.setdefault("topics", [])
        assert isinstance(topics, list)
        topics.append(value)
    elif option in _BRIDGE_TEXTS:
        bridge[_BRIDGE_TEXTS[option]] = value
    elif option in _BRIDGE_BOOLS:
        bridge[_BRIDGE_BOOLS[option]] = _bool(value)
    elif option in _BRIDGE_INTS:
        bridge[_BRIDGE_INTS[option]] = _int(value)
    elif option == "restart_timeout":
        bridge["restart_timeout"] = value
    elif option == "local_cleansession":
        if _bool(value):
            raise _Ignored("the link's local session is always kept (nothing is lost)")
    else:
        raise _Ignored("not supported for bridges yet")


def _tls_version(reader: _Reader, value: str) -> None:
    if value in ("tlsv1.2", "tlsv1.3"):
        reader.here().tls_version = value
    elif value == "tlsv1.1":
        reader.here().tls_version = "tlsv1.2"
        raise _Ignored("TLS 1.1 is not offered; the minimum is TLS 1.2")
    else:
        raise ValueError(f"expected tlsv1.1, tlsv1.2 or tlsv1.3, got {value!r}")


def _finish(reader: _Reader) -> None:
    config = reader.config
    if reader.default is not None:
        config.listeners.insert(0, reader.default)
    if not config.listeners:
        # Mosquitto 2 without listeners: local only, anonymous clients allowed.
        config.listeners = [ListenerConfig()]
        defined = False
    else:
        defined = True
    if reader.connections:
        config.max_connections = max(reader.connections)
        if len(set(reader.connections)) > 1:
            reader.notes.append(Problem(
                f"ignored: max_connections: culex has one limit for all listeners, "
                f"{config.max_connections}", "max_connections", warning=True))
    if reader.log_dest is not None:
        config.log_dest = reader.log_dest
    from .bridgeconfig import BridgeConfigError, bridge_from_mapping

    for table in reader.bridges:
        try:
            config.bridges.append(bridge_from_mapping(table))
        except BridgeConfigError as exc:
            reader.problems.append(Problem(str(exc), "connection"))
    if reader.log_types:
        if "none" in reader.log_types:
            config.log_dest = "none"
        else:
            config.log_level = min((_LOG_LEVELS[kind] for kind in reader.log_types),
                                   key=_RANK.__getitem__)
    _security(reader, defined)


def _security(reader: _Reader, defined: bool) -> None:
    config = reader.config
    if reader.per_listener:
        # Every listener counts, those that set nothing too.
        scopes = [reader.security.get(id(listener), _Security())
                  for listener in config.listeners]
    else:
        scopes = [reader.security.get(0, _Security())]
    for option in ("password_file", "acl_file"):
        values = {getattr(scope, option)[0] if getattr(scope, option) else None
                  for scope in scopes}
        if reader.per_listener and len(values) > 1:
            places = [getattr(scope, option) for scope in scopes if getattr(scope, option)]
            _, file, line = places[0]
            reader.problems.append(Problem(
                f"{option}: with per_listener_settings, culex needs the same {option} on "
                "every listener (it has one for all); listeners without one would accept "
                "its users", option, file, line))
            continue
        value = next(iter(values))
        if value is not None:
            setattr(config, option, value)
    if reader.per_listener:
        for listener in config.listeners:
            scope = reader.security.get(id(listener), _Security())
            # Mosquitto 2: a configured listener refuses anonymous clients unless told.
            listener.allow_anonymous = bool(scope.allow_anonymous) if defined else None
    else:
        allow = scopes[0].allow_anonymous
        config.allow_anonymous = allow if allow is not None else (False if defined else None)
