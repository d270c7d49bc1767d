"""TLS listeners: contexts from the configuration, the handshake, the client's identity.

Each connection is accepted as plain TCP and upgraded with ``loop.start_tls`` using the
listener's *current* context, so a SIGHUP can load new certificates for the connections that
follow without touching the ones already open.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import TYPE_CHECKING, Any, cast

from ..config import ConfigError, ListenerConfig

if TYPE_CHECKING:
    from ._server import Server

log = logging.getLogger("culex")

HANDSHAKE_TIMEOUT = 10.0  # seconds: a peer that opens a socket and says nothing is dropped
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

    def reload(self) -> None:
        try:
            self.context = make_context(self.config)
        except ConfigError as exc:
            log.error("reload of TLS listener %s failed, keeping its previous certificates: %s",
                      self.config.name, exc)
        else:
            log.info("reloaded certificates of listener %s", self.config.name)


class TLSAcceptor(asyncio.Protocol):
    """Holds a fresh TCP connection while its TLS handshake runs, then hands it over."""

    def __init__(self, server: Server, listener: TLSListener) -> None:
        self._server = server
        self._listener = listener
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        plain = cast(asyncio.Transport, transport)
        plain.pause_reading()  # the ClientHello must reach the TLS layer, not us
        self._task = asyncio.get_running_loop().create_task(self._handshake(plain))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def _handshake(self, plain: asyncio.Transport) -> None:
        from ._tcp import MQTTProtocol

        peer = plain.get_extra_info("peername")
        peer_text = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        protocol = MQTTProtocol(self._server.broker, self._server, self._listener.config)
        loop = asyncio.get_running_loop()
        try:
            secure = await loop.start_tls(plain, protocol, self._listener.context,
                                          server_side=True,
                                          ssl_handshake_timeout=HANDSHAKE_TIMEOUT)
        except (TimeoutError, OSError, ssl.SSLError, ConnectionError) as exc:
            log.info("refused: connection from %s: TLS handshake failed: %s", peer_text,
                     exc or type(exc).__name__)
            plain.abort()
            return
        if secure is None:
            plain.abort()
            return
        protocol.connection_made(secure)
