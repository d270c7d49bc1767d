"""TLS for MQTT listeners, run by culex itself on OpenSSL's memory BIOs.

The event loops' own TLS (``create_server(ssl=...)``) fails a handshake without a word to the
application: a client with a wrong CA, an expired certificate or plain MQTT on the TLS port
would leave no trace. Here the handshake is ours, so each failure is counted by reason and
logged with the peer's address (rate-limited: strangers can cause them at will). It also lets a
hang-up end the TLS session properly (close_notify, then half-close, as for plain TCP) and each
new handshake use the listener's current certificates after a SIGHUP.

``TLSStream`` is the raw TCP connection's protocol and, once the handshake is done, the
transport of the MQTT protocol above it: ciphertext below, plaintext above.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from typing import TYPE_CHECKING, Any, cast

from ._setup import peer_name

if TYPE_CHECKING:
    from ..observability import Counters
    from ._tcp import MQTTProtocol
    from ._tls import TLSListener

log = logging.getLogger("culex")

HANDSHAKE_TIMEOUT = 10.0  # seconds: a peer that opens a socket and says nothing is dropped
READ_SIZE = 1 << 18  # plaintext taken out of OpenSSL per call


def failure_reason(exc: BaseException) -> tuple[str, str]:
    """(counter label, words for the log) of a failed handshake."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "certificate_verify_failed", f"client certificate refused: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason.lower(), exc.reason.lower().replace("_", " ")
    return "error", str(exc) or type(exc).__name__


class TLSStream(asyncio.Protocol, asyncio.Transport):
    """One TLS server connection between a TCP transport and an application protocol."""

    def __init__(self, app: MQTTProtocol, listener: TLSListener, counters: Counters,
                 loop: asyncio.AbstractEventLoop, timeout: float | None = None) -> None:
        super().__init__()
        self._app = app
        self._listener = listener
        self._counters = counters
        self._loop = loop
        self._timeout = HANDSHAKE_TIMEOUT if timeout is None else timeout
        self._raw: asyncio.Transport | None = None
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls: ssl.SSLObject | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._peer = "?"
        self._open = False  # handshake done, the application protocol told
        self._failed = False
        self._closing = False
        self._eof_written = False

    # -- below: the TCP connection -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._raw = raw = cast(asyncio.Transport, transport)
        self._peer = peer_name(raw.get_extra_info("peername"))
        # The listener's context of the moment: a SIGHUP reload applies from the next one.
        self._tls = self._listener.context.wrap_bio(self._incoming, self._outgoing,
                                                     server_side=True)
        self._timer = self._loop.call_later(self._timeout, self._handshake_timed_out)

    def data_received(self, data: bytes) -> None:
        if self._failed or self._eof_written:
            return  # failed, or hanging up: what still comes is discarded
        tls = self._tls
        assert tls is not None
        self._incoming.write(data)
        if not self._open:
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                self._send()
                return
            except (ssl.SSLError, ValueError) as exc:
                self._send()  # OpenSSL's alert tells the client why, if it listens
                self._fail(exc)
                return
            self._handshake_done()
            if self._raw is None or self._raw.is_closing():
                return  # the application refused the connection
        chunks: list[bytes] = []
        try:
            while chunk := tls.read(READ_SIZE):
                chunks.append(chunk)
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:  # close_notify: the peer ends the TLS session
            self._deliver(chunks)
            self.close()
            return
        except ssl.SSLError as exc:
            self._deliver(chunks)
            log.warning("TLS error on connection from %s: %s; closing it", self._peer,
                        failure_reason(exc)[1])
            self.abort()
            return
        self._send()  # TLS 1.3 sends tickets and key updates of its own accord
        self._deliver(chunks)

    def eof_received(self) -> bool | None:
        if self._open:
            return self._app.eof_received()
        return None  # the transport closes; connection_lost counts the failure

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._open:
            self._open = False
            self._app.connection_lost(exc)
        elif not self._failed:
            self._fail(exc or ConnectionResetError("closed by the client during the handshake"),
                       hang_up=False)
        self._raw = None

    def pause_writing(self) -> None:
        if self._open:
            self._app.pause_writing()

    def resume_writing(self) -> None:
        if self._open:
            self._app.resume_writing()

    def _handshake_done(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._send()
        self._open = True
        self._app.connection_made(self)

    def _handshake_timed_out(self) -> None:
        self._timer = None
        self._fail(TimeoutError(f"no handshake within {self._timeout:g} s"), label="timeout")

    def _fail(self, exc: BaseException, hang_up: bool = True, label: str | None = None) -> None:
        self._failed = True
        reason, words = failure_reason(exc)
        if label is None and not isinstance(exc, ssl.SSLError):
            label = "closed"
        reason = label or reason
        self._counters.tls_failure(reason)
        skipped = self._listener.failure_log.admit()
        if skipped is not None:
            more = f" ({skipped} more not logged)" if skipped else ""
            log.warning("TLS handshake failed: from %s on listener %s: %s%s", self._peer,
                        self._listener.config.name, words, more,
                        extra={"event": "tls_handshake_failed", "peer": self._peer,
                               "reason": reason})
        if hang_up and self._raw is not None:
            self._raw.close()  # after the alert, if any

    def _deliver(self, chunks: list[bytes]) -> None:
        if chunks and self._open:
            self._app.data_received(chunks[0] if len(chunks) == 1 else b"".join(chunks))

    def _send(self) -> None:
        if self._outgoing.pending and self._raw is not None:
            self._raw.write(self._outgoing.read())

    # -- above: the transport of the application protocol ------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._tls is None or self._closing or self._eof_written:
            return
        self._tls.write(data)
        self._send()

    def writelines(self, list_of_data: Any) -> None:
        if self._tls is None or self._closing or self._eof_written:
            return
        for data in list_of_data:
            self._tls.write(data)
        self._send()

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        """close_notify, then the TCP half-close: the peer reads everything sent before."""
        if self._eof_written or self._raw is None:
            return
        self._eof_written = True
        self._notify_close()
        self._raw.write_eof()

    def close(self) -> None:
        if self._closing or self._raw is None:
            return
        self._closing = True
        if not self._eof_written:
            self._notify_close()
        self._raw.close()

    def abort(self) -> None:
        self._closing = True
        if self._raw is not None:
            self._raw.abort()

    def _notify_close(self) -> None:
        assert self._tls is not None
        # SSLWantReadError: ours is written; the peer's close_notify is not awaited.
        with contextlib.suppress(ssl.SSLError):
            self._tls.unwrap()
        self._send()

    def is_closing(self) -> bool:
        return self._closing or self._raw is None or self._raw.is_closing()

    def is_reading(self) -> bool:
        return self._raw is not None and self._raw.is_reading()

    def pause_reading(self) -> None:
        if self._raw is not None:
            self._raw.pause_reading()

    def resume_reading(self) -> None:
        if self._raw is not None:
            self._raw.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if self._raw is not None:
            self._raw.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._raw.get_write_buffer_size() if self._raw is not None else 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        tls = self._tls
        if tls is not None and self._open:
            if name == "peercert":
                return tls.getpeercert()
            if name == "ssl_object":
                return tls
            if name == "cipher":
                return tls.cipher()
            if name == "sslcontext":
                return tls.context
        return self._raw.get_extra_info(name, default) if self._raw is not None else default
