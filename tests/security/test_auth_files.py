"""Password and ACL files, without a network."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from culex.auth import (
    ClientInfo,
    PasswordFileAuthenticator,
    PasswordFileError,
    Verdict,
    hash_password,
    parse_acl,
    parse_hash,
    read_password_file,
)
from culex.auth._acl import READ, WRITE, AclFileError, check_subscribe, check_topic, filter_covers
from culex.auth._passwd import PasswordHash
from culex.protocol import topic_matches


def client(username: str | None, password: bytes | None = None, client_id: str = "c") -> ClientInfo:
    return ClientInfo(client_id, username, password, "127.0.0.1:1", 4)


# -- password hashes ------------------------------------------------------------------------

def test_hash_round_trip() -> None:
    hashed = hash_password(b"s3cret", iterations=1000)
    parsed = parse_hash(hashed.encode())
    assert parsed.verify(b"s3cret") and not parsed.verify(b"s3cret ")
    assert parsed.iterations == 1000 and len(parsed.salt) == 12


def test_sha512_scheme_6() -> None:
    salt = b"0123456789ab"
    digest = hashlib.sha512(b"pw" + salt).digest()
    line = f"$6${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    assert parse_hash(line).verify(b"pw") and not parse_hash(line).verify(b"pW")


def test_file_made_by_mosquitto_passwd(tmp_path: Path) -> None:
    assert shutil.which("mosquitto_passwd"), "mosquitto is needed: run scripts/test"
    path = tmp_path / "pw"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(path), "alice", "wonderland"],
                   check=True, capture_output=True)
    users = read_password_file(path)
    assert users["alice"].scheme == "7" and users["alice"].verify(b"wonderland")


@pytest.mark.parametrize("line", ["alice", "alice:plaintext", "alice:$7$x$abc$def",
                                  ":$6$YQ==$YQ==", "bob:$6$not base64$YQ=="])
def test_bad_password_lines(tmp_path: Path, line: str) -> None:
    path = tmp_path / "pw"
    path.write_text(f"# users\n\n{line}\n")
    with pytest.raises(PasswordFileError, match=r"pw:3"):
        read_password_file(path)


def test_authenticator_verdicts_and_cache(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text(f"alice:{hash_password(b'pw', 1000).encode()}\n")
    auth = PasswordFileAuthenticator(path)

    async def check(info: ClientInfo) -> Verdict:
        return await auth.authenticate(info)

    assert asyncio.run(check(client("alice", b"pw"))) is Verdict.ALLOW
    assert asyncio.run(check(client("alice", b"pw"))) is Verdict.ALLOW
    assert auth.hashes_computed == 1  # a reconnection does not hash again
    assert asyncio.run(check(client("alice", b"nope"))) is Verdict.DENY
    assert asyncio.run(check(client("alice", None))) is Verdict.DENY
    assert asyncio.run(check(client("bob", b"pw"))) is Verdict.NEXT
    assert asyncio.run(check(client(None))) is Verdict.NEXT
    path.write_text(f"alice:{hash_password(b'new', 1000).encode()}\n")
    auth.reload()
    assert asyncio.run(check(client("alice", b"pw"))) is Verdict.DENY  # cache emptied
    assert asyncio.run(check(client("alice", b"new"))) is Verdict.ALLOW


def test_an_unknown_user_costs_what_a_known_one_costs(tmp_path: Path) -> None:
    """No user enumeration by timing: a name the file does not hold is hashed (with the
    file's usual cost) and remembered exactly as a known name with a wrong password is."""
    path = tmp_path / "pw"
    path.write_text(f"alice:{hash_password(b'pw', 1000).encode()}\n")
    auth = PasswordFileAuthenticator(path)

    async def check(info: ClientInfo) -> Verdict:
        return await auth.authenticate(info)

    for name, verdict in (("alice", Verdict.DENY), ("mallory", Verdict.NEXT)):
        before = auth.hashes_computed
        assert asyncio.run(check(client(name, b"guess"))) is verdict
        assert auth.hashes_computed == before + 1  # one hash each
        assert asyncio.run(check(client(name, b"guess"))) is verdict
        assert auth.hashes_computed == before + 1  # and each answer remembered
    before = auth.hashes_computed
    assert asyncio.run(check(client("alice", None))) is Verdict.DENY
    assert asyncio.run(check(client("mallory", None))) is Verdict.NEXT
    assert auth.hashes_computed == before + 2  # without a password too


def test_password_hashes_run_on_one_thread_of_their_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """However many clients log in at once, hashing takes one core at most."""
    path = tmp_path / "pw"
    users = {f"u{n}": hash_password(b"pw", 1000) for n in range(8)}
    path.write_text("".join(f"{name}:{entry.encode()}\n" for name, entry in users.items()))
    auth = PasswordFileAuthenticator(path)
    threads: set[str] = set()
    real = PasswordHash.verify

    def verify(self: PasswordHash, password: bytes) -> bool:
        threads.add(threading.current_thread().name)
        return real(self, password)

    monkeypatch.setattr(PasswordHash, "verify", verify)

    async def all_at_once() -> list[Verdict]:
        return await asyncio.gather(*(auth.authenticate(client(name, b"pw"))
                                      for name in users))

    assert asyncio.run(all_at_once()) == [Verdict.ALLOW] * 8
    assert len(threads) == 1 and threading.current_thread().name not in threads


# -- ACL ------------------------------------------------------------------------------------

ACL = """
# anonymous clients
topic read public/#

user alice
topic readwrite home/#
topic deny home/secret
topic read $SYS/#

user bob
topic read home/#
pattern write devices/%u/#
pattern read clients/%c/#
"""


@pytest.mark.parametrize(("username", "client_id", "topic", "access", "allowed"), [
    (None, "c", "public/x", READ, True),
    (None, "c", "public/x", WRITE, False),
    ("alice", "c", "home/kitchen", WRITE, True),
    ("alice", "c", "home/secret", READ, False),  # deny wins over readwrite
    ("alice", "c", "public/x", READ, False),  # anonymous rules are not alice's
    ("bob", "c", "home/kitchen", READ, True),
    ("bob", "c", "home/kitchen", WRITE, False),
    ("bob", "c", "devices/bob/temp", WRITE, True),  # pattern %u
    ("alice", "c", "devices/bob/temp", WRITE, False),
    ("carol", "dev7", "clients/dev7/cmd", READ, True),  # pattern %c, user unknown to the file
    ("carol", "dev7", "clients/dev8/cmd", READ, False),
    ("a+b", "c", "devices/a+b/x", WRITE, False),  # wildcards in a name never widen a pattern
    ("alice", "c", "$SYS/broker/uptime", READ, True),
    ("bob", "c", "$SYS/broker/uptime", READ, False),
])
def test_acl_topic_access(username: str | None, client_id: str, topic: str, access: int,
                          allowed: bool) -> None:
    rules = parse_acl(ACL).rules_for(username, client_id)
    assert check_topic(rules, topic, access) is allowed


@pytest.mark.parametrize(("username", "sub_filter", "allowed"), [
    ("alice", "home/#", True),
    ("alice", "home/+/temp", True),
    ("alice", "home/secret", False),
    ("alice", "#", False),  # wider than anything granted
    ("bob", "home/kitchen", True),
    ("bob", "devices/bob/#", False),  # write-only
    ("alice", "$SYS/#", True),
    (None, "public/+", True),
    (None, "+/x", False),
])
def test_acl_subscribe(username: str | None, sub_filter: str, allowed: bool) -> None:
    rules = parse_acl(ACL).rules_for(username, "c")
    assert check_subscribe(rules, sub_filter) is allowed


@pytest.mark.parametrize("bad", ["topic read a/#/b", "group x", "user", "topic read "])
def test_acl_syntax_errors(bad: str) -> None:
    with pytest.raises(AclFileError, match="acl:2"):
        parse_acl("# header\n" + bad)


level = st.sampled_from(["a", "b", "+", "$x"])


@given(st.lists(level, min_size=1, max_size=3), st.booleans(),
       st.lists(level, min_size=1, max_size=3), st.booleans(),
       st.lists(st.sampled_from(["a", "b", "c", "$x"]), min_size=1, max_size=4))
def test_filter_covers_is_sound(acl: list[str], acl_hash: bool, sub: list[str], sub_hash: bool,
                                topic_levels: list[str]) -> None:
    acl_filter = "/".join(acl + (["#"] if acl_hash else []))
    sub_filter = "/".join(sub + (["#"] if sub_hash else []))
    topic = "/".join(topic_levels)
    if filter_covers(acl_filter, sub_filter) and topic_matches(sub_filter, topic):
        assert topic_matches(acl_filter, topic)
