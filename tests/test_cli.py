"""The command line and the configuration file: clear errors for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from culex.config import Config, ConfigError, config_from_mapping, load_config, parse_listen

from support import run_culex


def test_defaults_are_loopback_only() -> None:
    config = Config()
    assert [(x.bind_address, x.port) for x in config.listeners] == [("127.0.0.1", 1883)]
    assert config.packet_size_limit == 268_435_460


def test_config_file_keys() -> None:
    config = config_from_mapping({
        "max_keepalive": 120, "max_queued_messages": 10, "allow_anonymous": False,
        "persistent_client_expiration": "2d",
        "listener": [{"port": 1884, "bind_address": "0.0.0.0"}],
    })
    assert config.max_keepalive == 120 and config.max_queued_messages == 10
    assert config.persistent_client_expiration == 2 * 86400
    assert [(x.bind_address, x.port) for x in config.listeners] == [("0.0.0.0", 1884)]


@pytest.mark.parametrize(("data", "message"), [
    ({"max_keepalive": 70000}, "max_keepalive"),
    ({"max_keepalive": "10"}, "max_keepalive"),
    ({"no_such_option": 1}, "unknown option 'no_such_option'"),
    ({"listener": [{"port": 1, "socket_domain": "x"}]}, "unknown listener option"),
    ({"listener": [{"port": 1, "protocol": "gopher"}]},
     "protocol must be mqtt, websockets or http"),
    ({"listener": [{"port": 1, "protocol": "http", "certfile": "c", "keyfile": "k",
                    "cafile": "a", "require_certificate": True,
                    "use_identity_as_username": True}]}, "authenticates with the password"),
    ({"allow_anonymous": 1}, "allow_anonymous"),
    ({"persistent_client_expiration": "soon"}, "persistent_client_expiration"),
    ({"max_packet_size": 10}, "max_packet_size"),
    ({"durability": "sometimes"}, "durability"),
    ({"autosave_interval": 0}, "autosave_interval"),
    ({"persistence": "yes"}, "persistence"),
])
def test_bad_config_values(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(data)


def test_parse_listen() -> None:
    assert (parse_listen("0.0.0.0:1884").bind_address, parse_listen("[::1]:5").port) == (
        "0.0.0.0", 5)
    with pytest.raises(ConfigError):
        parse_listen("localhost")


def test_bad_config_file_exits_with_message(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("max_inflight_messages = -1\n")
    result = run_culex("serve", "--config", str(path))
    assert result.returncode == 2
    assert "max_inflight_messages" in result.stderr and str(path) in result.stderr


def test_missing_and_unparsable_config(tmp_path: Path) -> None:
    result = run_culex("serve", "--config", str(tmp_path / "missing.toml"))
    assert result.returncode == 2 and "cannot read" in result.stderr
    path = tmp_path / "broken.toml"
    path.write_text("max_keepalive = = 3\n")
    result = run_culex("serve", "--config", str(path))
    assert result.returncode == 2 and "broken.toml" in result.stderr


def test_port_in_use_is_a_clear_error() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run_culex("serve", "--listen", f"127.0.0.1:{port}")
    assert result.returncode != 0 and "cannot listen" in result.stderr


def test_passwd_create_update_delete(tmp_path: Path) -> None:
    from culex.auth import read_password_file

    path = tmp_path / "passwd"
    args = ["passwd", "--iterations", "1000"]
    assert run_culex(*args, "-c", "-b", str(path), "alice", "one").returncode == 0
    assert run_culex(*args, "-b", str(path), "bob", "two").returncode == 0
    assert run_culex(*args, "-b", str(path), "alice", "three").returncode == 0  # update
    users = read_password_file(path)
    assert users["alice"].verify(b"three") and users["bob"].verify(b"two")
    assert users["alice"].iterations == 1000
    assert path.stat().st_mode & 0o777 == 0o600
    assert run_culex("passwd", "-D", str(path), "bob").returncode == 0
    assert set(read_password_file(path)) == {"alice"}


@pytest.mark.parametrize(("args", "message"), [
    (["-b", "{file}", "x:y", "pw"], "may not contain ':'"),
    (["-D", "{file}", "nobody"], "not in"),
    (["-b", "{missing}", "u", "pw"], "cannot read"),
    (["{file}", "u", "pw"], "-b takes the password"),
    (["-c", "-D", "{file}", "u"], "cannot be used together"),
])
def test_passwd_errors(tmp_path: Path, args: list[str], message: str) -> None:
    path = tmp_path / "passwd"
    path.write_text("")
    filled = [a.format(file=path, missing=tmp_path / "missing") for a in args]
    result = run_culex("passwd", *filled)
    assert result.returncode == 1 and message in result.stderr


def test_persistence_location_is_relative_to_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "culex.toml"
    path.write_text('persistence_location = "data"\ndurability = "periodic"\n')
    config = load_config(path)
    assert config.persistence_location == str(tmp_path / "data")
    assert config.durability == "periodic" and config.persistence
