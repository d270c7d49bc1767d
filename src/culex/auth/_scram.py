"""SCRAM-SHA-256 (RFC 5802, RFC 7677): MQTT 5 enhanced authentication in which the password
never crosses the network and the client can check that the server knows it too.

The server keeps, per user, what RFC 5803 calls the SCRAM verifier (the form PostgreSQL writes
too), on the user's line of the password file:

    user:SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>     (base64 fields)

The same line serves a plain CONNECT with user name and password, checked by deriving the keys
from the password.

The exchange, with MQTT 5 packets (MQTT 5.0 4.12):

    CONNECT  Authentication Method "SCRAM-SHA-256", Data: n,,n=user,r=<client nonce>
    AUTH     0x18, Data: r=<client nonce + server nonce>,s=<salt>,i=<iterations>
    AUTH     0x18, Data: c=biws,r=<nonce>,p=<client proof>
    CONNACK  0x00, Data: v=<server signature>
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

METHOD = "SCRAM-SHA-256"
# OWASP's 2023 figure for PBKDF2-HMAC-SHA256. The client pays it at each SCRAM login (the
# server never does); a plain-password check against the same line pays it on the server,
# once per user and password (PasswordFileAuthenticator's cache).
DEFAULT_SCRAM_ITERATIONS = 600_000
MIN_ITERATIONS = 4096  # RFC 7677 section 4


class AuthenticationFailed(Exception):
    """The client's answer is wrong or malformed; the text says which, never a secret."""


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass(frozen=True, slots=True)
class ScramCredential:
    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes

    @classmethod
    def from_password(cls, password: bytes, salt: bytes, iterations: int) -> ScramCredential:
        salted = hashlib.pbkdf2_hmac("sha256", password, salt, iterations)
        client_key = _hmac(salted, b"Client Key")
        return cls(iterations, salt, hashlib.sha256(client_key).digest(),
                   _hmac(salted, b"Server Key"))

    def verify(self, password: bytes) -> bool:
        """A plain password against this verifier, in constant time."""
        derived = ScramCredential.from_password(password, self.salt, self.iterations)
        return hmac.compare_digest(derived.stored_key, self.stored_key)

    def encode(self) -> str:
        return (f"{METHOD}${self.iterations}:{_b64(self.salt)}"
                f"${_b64(self.stored_key)}:{_b64(self.server_key)}")


def scram_credential(password: bytes,
                     iterations: int = DEFAULT_SCRAM_ITERATIONS) -> ScramCredential:
    return ScramCredential.from_password(password, os.urandom(16), iterations)


def parse_scram(text: str) -> ScramCredential:
    """``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>``; ValueError if not."""
    try:
        method, params, keys = text.split("$")
        iterations_text, salt = params.split(":")
        stored, server = keys.split(":")
        iterations = int(iterations_text)
        credential = ScramCredential(iterations, base64.b64decode(salt, validate=True),
                                     base64.b64decode(stored, validate=True),
                                     base64.b64decode(server, validate=True))
    except (ValueError, binascii.Error):
        raise ValueError(f"not a {METHOD} verifier") from None
    if method != METHOD or iterations < 1 or len(credential.stored_key) != 32 \
            or len(credential.server_key) != 32:
        raise ValueError(f"not a {METHOD} verifier")
    return credential


def _attributes(message: str) -> list[tuple[str, str]]:
    pairs = []
    for part in message.split(","):
        name, sep, value = part.partition("=")
        if not sep or len(name) != 1:
            raise AuthenticationFailed("malformed SCRAM message")
        pairs.append((name, value))
    return pairs


def _sasl_name(value: str) -> str:
    """RFC 5802 5.1: "=2C" is ",", "=3D" is "=", any other "=" is an error."""
    if not value or re.search(r"=(?!2C|3D)", value):
        raise AuthenticationFailed("malformed user name")
    return value.replace("=2C", ",").replace("=3D", "=")


class ScramExchange:
    """The server side of one SCRAM-SHA-256 exchange: two steps, sans-IO."""

    def __init__(self, lookup: Callable[[str], ScramCredential | None],
                 server_nonce: str | None = None) -> None:
        self._lookup = lookup
        self._server_nonce = server_nonce or _b64(os.urandom(18))
        self.username: str | None = None
        self._state = 0
        self._credential: ScramCredential | None = None
        self._gs2_header = ""
        self._first_bare = ""
        self._server_first = ""
        self._nonce = ""

    def step(self, data: bytes | None) -> tuple[bool, bytes]:
        """The client's data in; whether the exchange is over and the data to send back.
        Raises AuthenticationFailed."""
        try:
            text = (data or b"").decode("utf-8")
        except UnicodeDecodeError:
            raise AuthenticationFailed("SCRAM data is not UTF-8") from None
        if self._state == 0:
            self._state = 1
            return False, self._client_first(text).encode()
        if self._state == 1:
            self._state = 2
            return True, self._client_final(text).encode()
        raise AuthenticationFailed("the SCRAM exchange is over")

    def _client_first(self, text: str) -> str:
        # gs2-header: "n,," (no channel binding) or "y,," (client could, thinks we cannot).
        if not (text.startswith("n,") or text.startswith("y,")):
            raise AuthenticationFailed("channel binding is not supported")
        flag, sep, rest = text.partition(",")
        authzid, sep2, bare = rest.partition(",")
        if not sep or not sep2 or authzid:
            raise AuthenticationFailed("malformed client-first message")
        self._gs2_header = f"{flag},{authzid},"
        attributes = _attributes(bare)
        if len(attributes) < 2 or attributes[0][0] != "n" or attributes[1][0] != "r" \
                or not attributes[1][1]:
            raise AuthenticationFailed("malformed client-first message")
        self.username = _sasl_name(attributes[0][1])
        self._first_bare = bare
        self._nonce = attributes[1][1] + self._server_nonce
        credential = self._lookup(self.username)
        if credential is None:
            # Answer as for a real user and fail at the proof: a stranger learns nothing of
            # which names exist (RFC 5802 section 9).
            fake = hashlib.sha256(self.username.encode() + self._server_nonce.encode()).digest()
            credential = ScramCredential(DEFAULT_SCRAM_ITERATIONS, fake[:16], b"", b"")
        self._credential = credential
        self._server_first = (f"r={self._nonce},s={_b64(credential.salt)},"
                              f"i={credential.iterations}")
        return self._server_first

    def _client_final(self, text: str) -> str:
        attributes = _attributes(text)
        if len(attributes) < 3 or attributes[0][0] != "c" or attributes[1][0] != "r" \
                or attributes[-1][0] != "p":
            raise AuthenticationFailed("malformed client-final message")
        if attributes[0][1] != _b64(self._gs2_header.encode()):
            raise AuthenticationFailed("channel binding data does not match")
        if attributes[1][1] != self._nonce:
            raise AuthenticationFailed("nonce does not match")
        try:
            proof = base64.b64decode(attributes[-1][1], validate=True)
        except binascii.Error:
            raise AuthenticationFailed("malformed client proof") from None
        credential = self._credential
        assert credential is not None
        without_proof = text[:text.rindex(",p=")]
        auth_message = f"{self._first_bare},{self._server_first},{without_proof}".encode()
        signature = _hmac(credential.stored_key, auth_message)
        if len(proof) != len(signature) or not credential.stored_key:
            raise AuthenticationFailed("wrong user name or password")
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        if not hmac.compare_digest(hashlib.sha256(client_key).digest(), credential.stored_key):
            raise AuthenticationFailed("wrong user name or password")
        return "v=" + _b64(_hmac(credential.server_key, auth_message))


class ScramMethod:
    """The SCRAM-SHA-256 authentication method, over the password file's verifiers."""

    name = METHOD

    def __init__(self, lookup: Callable[[str], ScramCredential | None]) -> None:
        self._lookup = lookup

    def begin(self) -> ScramExchange:
        return ScramExchange(self._lookup)
