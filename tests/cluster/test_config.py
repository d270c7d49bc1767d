"""The [cluster] table: what it accepts, what it refuses with a clear reason, and that
check-config does not print its secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from culex.config import ConfigError, config_from_mapping

from support import run_culex


def test_a_cluster_section_reads() -> None:
    config = config_from_mapping({"cluster": {"servers": "nats://10.0.0.1:4222",
                                              "node": "culex-a", "replicas": 3}})
    assert config.cluster is not None
    assert config.cluster.servers == ["nats://10.0.0.1:4222"] and config.cluster.replicas == 3
    assert config_from_mapping({}).cluster is None  # no section: a single node


@pytest.mark.parametrize(("table", "why"), [
    ({"servers": ["http://x:4222"]}, "not a nats:// or tls:// address"),
    ({"servers": []}, "at least one NATS server"),
    ({"node": "a.b"}, "without dots"),
    ({"replicas": 7}, "replicas: 1 to 5"),
    ({"replicas": "3"}, "expected an integer"),
    ({"user": "u"}, "user and password go together"),
    ({"tls_cert": "c.pem"}, "tls_cert and tls_key go together"),
    ({"colour": "blue"}, "unknown cluster option 'colour'"),
])
def test_bad_cluster_settings_are_refused_with_their_reason(table: dict[str, object],
                                                            why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        config_from_mapping({"cluster": table})


def test_check_config_does_not_print_the_nats_password(tmp_path: Path) -> None:
    path = tmp_path / "culex.toml"
    path.write_text('[cluster]\nservers = ["nats://127.0.0.1:4222"]\nuser = "culex"\n'
                    'password = "s3cr3t-nats"\n')
    result = run_culex("check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "s3cr3t-nats" not in result.stdout + result.stderr
    assert "# password is set (not shown)" in result.stdout


def test_problems_in_cluster_and_bridge_tables_are_given_their_line(tmp_path: Path) -> None:
    path = tmp_path / "culex.toml"
    path.write_text('max_connections = 10\n\n[[bridge]]\nname = "a"\naddress = "127.0.0.1"\n'
                    'colour = "red"\n\n[cluster]  # three NATS servers\n'
                    'servers = ["nats://127.0.0.1:4222"]\nreplicas = 9\nnode = "a.b"\n')
    result = run_culex("check-config", str(path))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert f"error: {path}:10: cluster: replicas: 1 to 5 [cluster.replicas]" in lines
    assert any(line.startswith(f"error: {path}:11: cluster: node: 'a.b' must be")
               for line in lines), lines
    # A bridge's problem: the line of its table.
    assert any(line.startswith(f"error: {path}:3: ") and "colour" in line
               for line in lines), lines
