"""Mosquitto's configuration files read as they are, and ``culex check-config``."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from culex.check import as_toml
from culex.config import Config, ConfigError, config_from_mapping
from culex.configfile import read_config
from culex.mosquitto_conf import looks_like_mosquitto

from support import BrokerProcess, run_culex


def read(tmp_path: Path, text: str) -> tuple[Config, list[str]]:
    path = tmp_path / "mosquitto.conf"
    path.write_text(text)
    config, notes = read_config(path)
    return config, [str(note) for note in notes]


def errors_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "mosquitto.conf"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        read_config(path)
    return [str(problem) for problem in caught.value.problems if not problem.warning]


def test_the_format_is_recognised() -> None:
    assert looks_like_mosquitto("# comment\n\nlistener 1883\n")
    assert looks_like_mosquitto("allow_anonymous true\n")
    assert not looks_like_mosquitto("# comment\nmax_keepalive = 60\n")
    assert not looks_like_mosquitto("[[listener]]\nport = 1\n")
    assert not looks_like_mosquitto("key=1\n")
    assert not looks_like_mosquitto("")  # no lines: culex's defaults either way


def test_listeners_and_their_options_with_mosquitto_2_defaults(tmp_path: Path) -> None:
    config, notes = read(tmp_path, """
# from the documentation's examples
listener 1883
listener 8883 127.0.0.1
certfile /etc/certs/server.crt
keyfile /etc/certs/server.key
cafile /etc/certs/ca.crt
require_certificate true
use_identity_as_username true
tls_version tlsv1.3
listener 8080
protocol websockets
password_file /etc/mosquitto/passwd
acl_file /etc/mosquitto/acl
max_queued_messages 200
max_queued_bytes 100000
max_inflight_messages 10
queue_qos0_messages true
message_size_limit 1000
max_packet_size 2000
max_keepalive 120
max_connections 50
persistent_client_expiration 2d
sys_interval 30
""")
    assert notes == []
    plain, tls, ws = config.listeners
    assert (plain.port, plain.bind_address, plain.protocol) == (1883, "0.0.0.0", "mqtt")
    assert (tls.port, tls.bind_address, tls.certfile, tls.tls_version) == \
        (8883, "127.0.0.1", "/etc/certs/server.crt", "tlsv1.3")
    assert tls.require_certificate and tls.use_identity_as_username
    assert (ws.port, ws.protocol) == (8080, "websockets")
    c = config
    assert (c.password_file, c.acl_file) == ("/etc/mosquitto/passwd", "/etc/mosquitto/acl")
    assert c.allow_anonymous is False  # Mosquitto 2: listeners configured
    assert c.persistence is False  # Mosquitto's default
    assert (c.max_queued_messages, c.max_queued_bytes, c.max_inflight_messages,
            c.queue_qos0_messages, c.message_size_limit, c.max_packet_size,
            c.max_keepalive, c.max_connections, c.persistent_client_expiration,
            c.sys_interval) == (200, 100000, 10, True, 1000, 2000, 120, 50, 172800, 30)


def test_no_listener_is_local_only_with_anonymous_clients(tmp_path: Path) -> None:
    config, _ = read(tmp_path, "persistence true\npersistence_location /var/lib/x/\n"
                               "autosave_interval 60\nlog_type error\nlog_type warning\n")
    [listener] = config.listeners
    assert (listener.bind_address, listener.port) == ("127.0.0.1", 1883)
    assert config.allow_anonymous is None and config.anonymous_allowed(listener)
    assert config.persistence and config.persistence_location == "/var/lib/x/"
    assert (config.durability, config.autosave_interval) == ("periodic", 60.0)
    assert config.log_level == "warning"


def test_port_and_bind_address_make_the_default_listener(tmp_path: Path) -> None:
    config, _ = read(tmp_path, "port 1884\nbind_address 127.0.0.1\nallow_anonymous true\n"
                               "listener 9001\nprotocol websockets\n")
    first, second = config.listeners
    assert (first.port, first.bind_address, second.port, second.protocol) == \
        (1884, "127.0.0.1", 9001, "websockets")
    assert config.allow_anonymous is True


def test_per_listener_settings(tmp_path: Path) -> None:
    config, _ = read(tmp_path, "per_listener_settings true\n"
                               "listener 1883 127.0.0.1\nallow_anonymous true\n"
                               "password_file /p\n"
                               "listener 8883\npassword_file /p\n")
    local, network = config.listeners
    assert (local.allow_anonymous, network.allow_anonymous) == (True, False)
    assert config.password_file == "/p"
    # Different files per listener (or one listener without) cannot be kept apart: refused.
    [error] = errors_of(tmp_path, "per_listener_settings true\nlistener 1883\n"
                                  "password_file /p\nlistener 1884\n")
    assert error.startswith(f"{tmp_path / 'mosquitto.conf'}:3: password_file: with "
                            "per_listener_settings")


def test_include_dir_in_sorted_order(tmp_path: Path) -> None:
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    (conf_d / "b.conf").write_text("max_keepalive 200\n")
    (conf_d / "a.conf").write_text("max_keepalive 100\nlistener 1999\n")
    (conf_d / "README").write_text("not read\n")
    config, _ = read(tmp_path, f"include_dir {conf_d}\n")
    assert config.max_keepalive == 200
    assert [listener.port for listener in config.listeners] == [1999]


def test_unsupported_lines_are_warned_about_one_by_one(tmp_path: Path) -> None:
    _, notes = read(tmp_path, "listener 1883\nallow_anonymous true\n"
                              "upgrade_outgoing_qos true\npersistence_file x.db\n"
                              "log_dest syslog\nlog_dest stderr\nmemory_limit 1000\n"
                              "tls_version tlsv1.1\n")
    path = tmp_path / "mosquitto.conf"
    assert notes == [
        f"{path}:3: ignored: upgrade_outgoing_qos: not supported: messages keep their QoS",
        f"{path}:4: ignored: persistence_file: culex names its own file in "
        "persistence_location",
        f"{path}:5: ignored: log_dest: culex cannot log to syslog",
        f"{path}:7: ignored: memory_limit: not supported; queue limits bound memory per "
        "client",
        f"{path}:8: ignored: tls_version: TLS 1.1 is not offered; the minimum is TLS 1.2",
    ]


@pytest.mark.parametrize("line", ["auth_plugin /usr/lib/auth.so", "plugin /x.so",
                                  "auth_opt_backends mysql", "crlfile /crl.pem",
                                  "mount_point site1/", "capath /etc/ssl/certs",
                                  "use_username_as_clientid true"])
def test_lines_that_would_let_more_in_stop_the_broker(tmp_path: Path, line: str) -> None:
    [error] = errors_of(tmp_path, f"listener 1883\n{line}\n")
    assert error.startswith(f"{tmp_path / 'mosquitto.conf'}:2: {line.split()[0]}: ")
    assert "culex will not start without it" in error


def test_every_error_is_reported_with_its_line(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, "listener x\nallow_anonymous yes\nno_such_option 1\n"
                                 "persistent_client_expiration soon\n")
    path = tmp_path / "mosquitto.conf"
    assert [error.split(": ")[0] for error in errors] == [f"{path}:{n}" for n in (1, 2, 3, 4)]
    assert "unknown option (Mosquitto would refuse it too)" in errors[2]


def test_serve_refuses_a_plugin_and_says_why(tmp_path: Path) -> None:
    path = tmp_path / "mosquitto.conf"
    path.write_text("listener 0 127.0.0.1\nauth_plugin /usr/lib/x.so\n")
    result = run_culex("serve", "--config", str(path))
    assert result.returncode == 2
    assert f"configuration error: {path}:2: auth_plugin: authentication plugins" \
        in result.stderr


def test_check_config_lists_every_problem_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "culex.toml"
    path.write_text("max_keepalive = 70000\nno_such = 1\n\n[[listener]]\nport = 99999\n"
                    'protocol = "gopher"\n')
    result = run_culex("check-config", str(path))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert f"error: {path}:2: unknown option 'no_such' [no_such]" in lines
    assert f"error: {path}:1: max_keepalive = 70000 is out of range [max_keepalive]" in lines
    assert any(line.startswith(f"error: {path}:5: ") and "port 99999" in line
               for line in lines)
    assert lines[-1] == f"{path}: 4 errors, 0 warnings"


def test_check_config_reads_the_files_a_configuration_names(tmp_path: Path) -> None:
    path = tmp_path / "mosquitto.conf"
    path.write_text(f"listener 1883\npassword_file {tmp_path}/missing\n"
                    f"listener 8883\ncertfile {tmp_path}/c.pem\nkeyfile {tmp_path}/k.pem\n")
    result = run_culex("check-config", str(path))
    assert result.returncode == 1
    assert "missing" in result.stdout and "cannot load certfile" in result.stdout


def test_check_config_prints_the_settings_as_culex_toml(tmp_path: Path) -> None:
    path = tmp_path / "mosquitto.conf"
    path.write_text("listener 1883 127.0.0.1\nallow_anonymous true\nmax_keepalive 60\n"
                    "memory_limit 1000000\n")
    result = run_culex("check-config", str(path))
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[-1] == f"{path}: OK, 1 warning"
    assert f"warning: {path}:4: ignored: memory_limit: " in result.stdout
    toml = "\n".join(line for line in result.stdout.splitlines()
                     if not line.startswith(("warning:", "error:", str(path))))
    twin = config_from_mapping(tomllib.loads(toml))  # the printed TOML is a configuration
    config, _ = read_config(path)
    assert as_toml(twin) == as_toml(config)


def test_pid_file(tmp_path: Path) -> None:
    pid_file = tmp_path / "culex.pid"
    path = tmp_path / "mosquitto.conf"
    path.write_text(f"listener 0 127.0.0.1\nallow_anonymous true\npid_file {pid_file}\n")
    broker = BrokerProcess("--config", str(path), listen=False).start()
    try:
        assert broker.proc is not None
        assert pid_file.read_text() == f"{broker.proc.pid}\n"
    finally:
        assert broker.stop() == 0
    assert not pid_file.exists()
    missing = tmp_path / "no" / "dir" / "x.pid"
    path.write_text(f"listener 0 127.0.0.1\npid_file {missing}\n")
    result = run_culex("serve", "--config", str(path))
    assert result.returncode == 1 and f"cannot write pid_file {missing}" in result.stderr
    assert os.path.exists(path)
