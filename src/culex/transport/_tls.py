"""TLS listeners: contexts from the configuration, reload, the client's identity.

MQTT over TLS runs its handshakes in ``_tls_stream``, each with the listener's current context.
Secure WebSockets leave theirs to the event loop (``create_server(ssl=...)``): to let a SIGHUP
load new certificates for the connections that follow there too, the listener's first context
carries a server-name callback that points each new handshake at the *current* context (OpenSSL
calls it for every ClientHello, with or without SNI).
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

from ..config import ConfigError, ListenerConfig
from ..observability import LogSampler

log = logging.getLogger("culex")

_VERSIONS = {"tlsv1.2": ssl.TLSVersion.TLSv1_2, "tlsv1.3": ssl.TLSVersion.TLSv1_3}
# RFC 4514 short names, as Mosquitto's use_subject_as_username prints them.
_SHORT_NAMES = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
                "countryName": "C", "stateOrProvinceName": "ST", "localityName": "L",
                "streetAddress": "STREET", "domainComponent": "DC", "userId": "UID"}


def make_context(listener: ListenerConfig) -> ssl.SSLContext:
    """The server context of a TLS listener; ConfigError says what could not be loaded."""
    assert listener.certfile is not None and listener.keyfile is not None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS[listener.tls_version]
    # TLS 1.2 renegotiation asked by a client costs the server a handshake at the client's whim.
    context.options |= ssl.OP_NO_RENEGOTIATION
    where = f"listener {listener.name}"
    try:
        context.load_cert_chain(listener.certfile, listener.keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{where}: cannot load certfile {listener.certfile!r} / keyfile "
                          f"{listener.keyfile!r}: {exc}") from None
    if listener.cafile:
        try:
            context.load_verify_locations(listener.cafile)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"{where}: cannot load cafile {listener.cafile!r}: "
                              f"{exc}") from None
        context.verify_mode = (ssl.CERT_REQUIRED if listener.require_certificate
                               else ssl.CERT_OPTIONAL)
    if listener.ciphers:
        try:
            context.set_ciphers(listener.ciphers)
        except ssl.SSLError as exc:
            raise ConfigError(f"{where}: ciphers {listener.ciphers!r}: {exc}") from None
    return context


def certificate_identity(peercert: Any) -> tuple[str | None, str | None]:
    """(subject in RFC 4514 form, common name) of a verified peer certificate."""
    if not peercert:
        return None, None
    parts: list[str] = []
    common_name = None
    for rdn in peercert.get("subject", ()):
        for name, value in rdn:
            if name == "commonName" and common_name is None:
                common_name = value
            escaped = "".join("\\" + c if c in ',+"\\<>;=' else c for c in value)
            parts.append(f"{_SHORT_NAMES.get(name, name)}={escaped}")
    return ",".join(reversed(parts)) or None, common_name


class TLSListener:
    """A TLS listener's configuration and its current context."""

    def __init__(self, config: ListenerConfig) -> None:
        self.config = config
        self.context = make_context(config)
        self.server_context = self.context  # the one the listening socket was given
        self.server_context.sni_callback = self._select_context
        self.failure_log = LogSampler()  # failed handshakes: a few lines a minute at most

    def _select_context(self, ssl_object: Any, server_name: str | None,
                        context: ssl.SSLContext) -> None:
        if self.context is not self.server_context:
            ssl_object.context = self.context

    def reload(self) -> None:
        try:
            self.context = make_context(self.config)
        except ConfigError as exc:
            log.error("reload of TLS listener %s failed, keeping its previous certificates: %s",
                      self.config.name, exc)
        else:
            log.info("reloaded certificates of listener %s", self.config.name)
