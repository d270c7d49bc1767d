"""The options culex pub, sub and rr share, with mosquitto_pub's and mosquitto_sub's names and
meanings (``-h`` is the host, as there: help is ``--help``), turned into ClientOptions."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import unquote, urlsplit

from ..client import ClientOptions, TLSOptions
from ..protocol import MQTT_3_1, MQTT_3_1_1, MQTT_5, Properties, Will

VERSIONS = {"31": MQTT_3_1, "mqttv31": MQTT_3_1, "311": MQTT_3_1_1, "mqttv311": MQTT_3_1_1,
            "5": MQTT_5, "mqttv5": MQTT_5}
NEVER = 0xFFFFFFFF

# -D COMMAND PROPERTY VALUE: each property's attribute, kind, and the commands allowed it.
_INT, _TEXT, _BYTES, _PAIR = "int", "text", "bytes", "pair"
PROPERTIES: dict[str, tuple[str, str, frozenset[str]]] = {
    "payload-format-indicator": ("payload_format_indicator", _INT,
                                 frozenset({"publish", "will"})),
    "message-expiry-interval": ("message_expiry_interval", _INT,
                                frozenset({"publish", "will"})),
    "content-type": ("content_type", _TEXT, frozenset({"publish", "will"})),
    "response-topic": ("response_topic", _TEXT, frozenset({"publish", "will"})),
    "correlation-data": ("correlation_data", _BYTES, frozenset({"publish", "will"})),
    "subscription-identifier": ("subscription_identifiers", _INT, frozenset({"subscribe"})),
    "session-expiry-interval": ("session_expiry_interval", _INT,
                                frozenset({"connect", "disconnect"})),
    "authentication-method": ("authentication_method", _TEXT, frozenset({"connect"})),
    "authentication-data": ("authentication_data", _BYTES, frozenset({"connect"})),
    "request-problem-information": ("request_problem_information", _INT,
                                    frozenset({"connect"})),
    "request-response-information": ("request_response_information", _INT,
                                     frozenset({"connect"})),
    "will-delay-interval": ("will_delay_interval", _INT, frozenset({"will"})),
    "receive-maximum": ("receive_maximum", _INT, frozenset({"connect"})),
    "topic-alias-maximum": ("topic_alias_maximum", _INT, frozenset({"connect"})),
    "maximum-packet-size": ("maximum_packet_size", _INT, frozenset({"connect"})),
    "topic-alias": ("topic_alias", _INT, frozenset({"publish"})),
    "reason-string": ("reason_string", _TEXT, frozenset({"disconnect"})),
    "user-property": ("user_properties", _PAIR,
                      frozenset({"connect", "publish", "subscribe", "unsubscribe",
                                 "disconnect", "will"})),
}
COMMANDS = ("connect", "publish", "subscribe", "unsubscribe", "disconnect", "will")


def fail(prog: str, message: str, quiet: bool = False, usage: bool = True) -> NoReturn:
    if not quiet:
        print(f"Error: {message}", file=sys.stderr)
        if usage:
            print(f"\nUse '{prog} --help' to see usage.", file=sys.stderr)
    raise SystemExit(1)


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description, add_help=False,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--help", action="help", help="show this help and exit")
    net = p.add_argument_group("connection (as mosquitto_pub and mosquitto_sub)")
    net.add_argument("-h", "--host", help="broker host (default localhost)")
    net.add_argument("-p", "--port", type=int, help="port (default 1883, 8883 with TLS)")
    net.add_argument("-L", "--url", help="mqtt(s)://[user[:password]@]host[:port]/topic, or "
                                         "ws(s)://... for MQTT over WebSockets")
    net.add_argument("-u", "--username", help="user name")
    net.add_argument("-P", "--pw", help="password")
    net.add_argument("-i", "--id", help="client id (default: empty, or assigned by the broker)")
    net.add_argument("-I", "--id-prefix", help="client id: this prefix and the process id")
    net.add_argument("-k", "--keepalive", type=int, default=60,
                     help="keep-alive in seconds (default 60)")
    net.add_argument("-c", "--disable-clean-session", action="store_true",
                     help="persistent session (MQTT 5: no expiry unless -x)")
    net.add_argument("-x", "--session-expiry-interval", type=int,
                     help="MQTT 5 session expiry in seconds (-1: never)")
    net.add_argument("-q", "--qos", type=int, default=0, choices=(0, 1, 2),
                     help="QoS (default 0)")
    net.add_argument("-V", "--protocol-version", default="311",
                     help="31, 311 or 5 (mqttv31, mqttv311, mqttv5); default 311")
    net.add_argument("-D", "--property", nargs="+", action="append", default=[],
                     metavar="ARG", help="MQTT 5 property: COMMAND PROPERTY VALUE (user-"
                                         "property: KEY VALUE); COMMAND is one of "
                                         + ", ".join(COMMANDS))
    net.add_argument("-d", "--debug", action="store_true", help="print every packet")
    net.add_argument("--quiet", action="store_true", help="print no error messages")
    tls = p.add_argument_group("TLS")
    tls.add_argument("--cafile", help="CA certificates (turns TLS on)")
    tls.add_argument("--capath", help="directory of CA certificates (turns TLS on)")
    tls.add_argument("--cert", help="client certificate")
    tls.add_argument("--key", help="client private key")
    tls.add_argument("--insecure", action="store_true",
                     help="do not check the server's name against its certificate")
    tls.add_argument("--tls-version", choices=("tlsv1.2", "tlsv1.3"), help="the minimum")
    tls.add_argument("--tls-use-os-certs", action="store_true",
                     help="trust the system's CA certificates (turns TLS on)")
    will = p.add_argument_group("will")
    will.add_argument("--will-topic", help="topic of the will the broker publishes if this "
                                           "client goes away without DISCONNECT")
    will.add_argument("--will-payload", default="", help="its payload (default: empty)")
    will.add_argument("--will-qos", type=int, default=0, choices=(0, 1, 2), help="its QoS")
    will.add_argument("--will-retain", action="store_true", help="retain it")
    return p


@dataclass
class Common:
    """What the shared options describe: the connection, and the properties per command."""

    options: ClientOptions
    topic_from_url: str | None
    properties: dict[str, Properties]
    debug: bool
    quiet: bool


def common(prog: str, args: argparse.Namespace, default_id: str = "") -> Common:
    quiet = args.quiet
    try:
        version = VERSIONS[args.protocol_version]
    except KeyError:
        fail(prog, f"Invalid protocol version '{args.protocol_version}'.", quiet)
    fields: dict[str, dict[str, Any]] = {command: {} for command in COMMANDS}
    for item in args.property:
        _property(prog, item, fields, version, quiet)
    host, port, username, password = args.host, args.port, args.username, args.pw
    topic = path = None
    tls_on = bool(args.cafile or args.capath or args.tls_use_os_certs)
    if args.url:
        parts = urlsplit(args.url)
        if parts.scheme not in ("mqtt", "mqtts", "ws", "wss"):
            fail(prog, f"Unsupported URL scheme '{parts.scheme}'.", quiet)
        host = parts.hostname or host
        port = parts.port or port
        username = unquote(parts.username) if parts.username else username
        password = unquote(parts.password) if parts.password else password
        tls_on = tls_on or parts.scheme in ("mqtts", "wss")
        if parts.scheme in ("ws", "wss"):
            path = "/mqtt"
        topic = unquote(parts.path[1:]) if parts.path.startswith("/") and parts.path != "/" \
            else None
    tls = None
    if tls_on or args.cert:
        tls = TLSOptions(args.cafile, args.capath, args.cert, args.key, args.insecure,
                         args.tls_version)
    client_id = args.id or (f"{args.id_prefix}{os.getpid()}" if args.id_prefix else default_id)
    if version == MQTT_3_1 and not client_id:
        # MQTT 3.1 has no empty client ids.
        client_id = f"culex|{os.getpid()}-{socket.gethostname()}"[:23]
    if version == MQTT_5:
        expiry = args.session_expiry_interval
        if expiry is None:
            expiry = NEVER if args.disable_clean_session else None
        elif expiry == -1:
            expiry = NEVER
        if expiry:
            fields["connect"]["session_expiry_interval"] = expiry
    properties = {command: Properties(**values) for command, values in fields.items()}
    connect_props = properties["connect"]
    will = None
    if args.will_topic:
        will = Will(args.will_topic, args.will_payload.encode(), args.will_qos,
                    args.will_retain, properties["will"])
    elif args.will_retain or args.will_payload:
        fail(prog, "Will payload or retain given, but no will topic.", quiet)
    options = ClientOptions(
        host=host or "localhost", port=port or (8883 if tls else 1883), tls=tls,
        websocket_path=path, version=version, client_id=client_id,
        clean_start=not args.disable_clean_session, keep_alive=args.keepalive,
        username=username, password=password.encode() if password is not None else None,
        will=will, properties=connect_props if version == MQTT_5 else Properties(),
        disconnect_properties=properties["disconnect"])
    return Common(options, topic, properties, args.debug, quiet)


def _property(prog: str, item: list[str], fields: dict[str, dict[str, Any]], version: int,
              quiet: bool) -> None:
    if version != MQTT_5:
        fail(prog, "-D/--property is only valid with MQTT 5 (-V 5).", quiet)
    if len(item) < 3:
        fail(prog, "-D needs COMMAND PROPERTY VALUE.", quiet)
    command, name, *values = item
    if command not in COMMANDS:
        fail(prog, f"Invalid command '{command}' given to -D.", quiet)
    spec = PROPERTIES.get(name)
    if spec is None or command not in spec[2]:
        fail(prog, f"Invalid property '{name}' for command '{command}'.", quiet)
    attribute, kind, _ = spec
    target = fields[command]
    if kind == _PAIR:
        if len(values) != 2:
            fail(prog, "user-property needs a KEY and a VALUE.", quiet)
        target.setdefault(attribute, []).append((values[0], values[1]))
        return
    if len(values) != 1:
        fail(prog, f"Property '{name}' takes one value.", quiet)
    value = values[0]
    if kind == _INT:
        try:
            number = int(value)
        except ValueError:
            fail(prog, f"Property '{name}' needs a number, not '{value}'.", quiet)
        target[attribute] = [number] if attribute == "subscription_identifiers" else number
    elif kind == _BYTES:
        target[attribute] = value.encode()
    else:
        target[attribute] = value
