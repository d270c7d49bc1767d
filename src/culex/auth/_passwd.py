"""Password files in Mosquitto's format, one ``username:hash`` per line.

- ``$7$ITERATIONS$SALT$HASH``: PBKDF2-HMAC-SHA512, 64-byte hash, salt and hash in base64; the
  iteration count is per line, so files written by mosquitto_passwd (101 iterations) and by
  ``culex passwd`` (many more) verify alike.
- ``$6$SALT$HASH``: one round of SHA-512 over password then salt (mosquitto_passwd's older
  default). Read, never written: it is far too cheap to brute-force.
- ``SCRAM-SHA-256$ITERATIONS:SALT$STOREDKEY:SERVERKEY`` (RFC 5803; ``culex passwd --scram``):
  for MQTT 5 enhanced authentication with SCRAM-SHA-256, and for plain passwords as well.
  Mosquitto does not read these lines.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

from ._scram import METHOD as SCRAM_METHOD
from ._scram import ScramCredential, parse_scram

# OWASP's 2023 figure for PBKDF2-HMAC-SHA512. About 0.2 s per check on a 2-core x86 server
# and about a second on a Raspberry Pi 4: slow enough to make a stolen file expensive to
# attack, and a reconnecting client does not pay it twice (see PasswordAuthenticator's cache).
DEFAULT_ITERATIONS = 210_000
SALT_BYTES = 12  # what mosquitto_passwd uses


class PasswordFileError(ValueError):
    """A password file that cannot be used, with the line that is wrong."""


@dataclass(frozen=True, slots=True)
class PasswordHash:
    scheme: str  # "7" or "6"
    iterations: int
    salt: bytes
    digest: bytes

    def verify(self, password: bytes) -> bool:
        """Constant-time check of ``password`` against this hash."""
        if self.scheme == "7":
            computed = hashlib.pbkdf2_hmac("sha512", password, self.salt, self.iterations,
                                           len(self.digest))
        else:
            computed = hashlib.sha512(password + self.salt).digest()
        return hmac.compare_digest(computed, self.digest)

    def encode(self) -> str:
        salt = base64.b64encode(self.salt).decode()
        digest = base64.b64encode(self.digest).decode()
        if self.scheme == "7":
            return f"$7${self.iterations}${salt}${digest}"
        return f"$6${salt}${digest}"


def hash_password(password: bytes, iterations: int = DEFAULT_ITERATIONS) -> PasswordHash:
    salt = os.urandom(SALT_BYTES)
    return PasswordHash("7", iterations, salt,
                        hashlib.pbkdf2_hmac("sha512", password, salt, iterations, 64))


# What a password file line holds.
Credential = PasswordHash | ScramCredential


def parse_hash(text: str) -> Credential:
    if text.startswith(SCRAM_METHOD + "$"):
        try:
            return parse_scram(text)
        except ValueError as exc:
            raise PasswordFileError(str(exc)) from None
    parts = text.split("$")
    try:
        if len(parts) == 5 and parts[0] == "" and parts[1] == "7":
            iterations = int(parts[2])
            if iterations < 1:
                raise ValueError
            return PasswordHash("7", iterations, base64.b64decode(parts[3], validate=True),
                                base64.b64decode(parts[4], validate=True))
        if len(parts) == 4 and parts[0] == "" and parts[1] == "6":
            return PasswordHash("6", 1, base64.b64decode(parts[2], validate=True),
                                base64.b64decode(parts[3], validate=True))
    except (ValueError, binascii.Error):
        pass
    raise PasswordFileError(f"not a $7$, $6$ or {SCRAM_METHOD} hash (plain-text passwords are "
                            "not accepted)")


def read_password_file(path: str | Path) -> dict[str, Credential]:
    users: dict[str, Credential] = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PasswordFileError(f"{path}: cannot read: {exc}") from None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        username, sep, hashed = line.partition(":")
        if not sep or not username:
            raise PasswordFileError(f"{path}:{number}: expected username:hash")
        try:
            users[username] = parse_hash(hashed)
        except PasswordFileError as exc:
            raise PasswordFileError(f"{path}:{number}: user {username!r}: {exc}") from None
    return users


def write_password_file(path: str | Path, users: dict[str, Credential]) -> None:
    """Write atomically: a crash leaves the old file or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    body = "".join(f"{name}:{hashed.encode()}\n" for name, hashed in users.items())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(body)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)
