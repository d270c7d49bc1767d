"""Running as a service: the systemd unit, the notification protocol (READY=1 once listening),
the licence and the package metadata, and a wheel that installs and runs."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import paho.mqtt.client as mqtt

import culex

from paho_client import Paho
from support import WAIT, BrokerProcess, broker_env

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "packaging" / "culex.service"


def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    culex_path = shutil.which("culex")
    assert culex_path is not None
    # verify checks that the program exists: the one installed here stands in for
    # /usr/local/bin/culex.
    unit = tmp_path / "culex.service"
    text = UNIT.read_text()
    assert "ExecStart=/usr/local/bin/culex serve" in text
    unit.write_text(text.replace("/usr/local/bin/culex", culex_path))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                            text=True, timeout=60)
    complaints = [line for line in result.stderr.splitlines() if "culex.service" in line]
    assert result.returncode == 0 and complaints == [], result.stderr
    for needed in ("Type=notify", "StateDirectory=culex", "ExecReload=/bin/kill -HUP",
                   "NoNewPrivileges=yes", "ProtectSystem=strict", "DynamicUser=yes"):
        assert needed in text, needed


def test_the_service_manager_is_told_ready_reloading_and_stopping(tmp_path: Path) -> None:
    address = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(address)
        manager.settimeout(WAIT)
        os.environ["NOTIFY_SOCKET"] = address
        try:
            broker = BrokerProcess().start()
        finally:
            del os.environ["NOTIFY_SOCKET"]
        try:
            ready = manager.recv(4096).decode()
            assert ready.startswith("READY=1\nSTATUS=listening on 127.0.0.1:")
            assert broker.port and f":{broker.port}" in ready
            assert broker.proc is not None
            broker.proc.send_signal(signal.SIGHUP)
            assert manager.recv(4096) == b"RELOADING=1"
            assert manager.recv(4096) == b"READY=1"
        finally:
            assert broker.stop() == 0
        assert manager.recv(4096) == b"STOPPING=1"


def test_licence_metadata_and_one_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"file": "LICENSE"}
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")
    assert "License :: OSI Approved :: MIT License" in project["classifiers"]
    assert project["dynamic"] == ["version"] and "version" not in project
    assert project["authors"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", culex.__version__)


def test_a_wheel_builds_installs_and_runs_without_a_compiler(tmp_path: Path) -> None:
    """On a machine with no C compiler (CC=false here) the wheel is pure Python, says so
    when it is built, and at start."""
    wheels = tmp_path / "wheels"
    env = dict(os.environ, CC="false")
    env.pop("CULEX_PURE_PYTHON", None)
    # A copy of the sources: a build in this tree would replace what the tests import.
    tree = tmp_path / "culex"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(
        ".git", "build", "node_modules", "*.so", "__pycache__", ".*_cache", ".hypothesis"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(tree), "--no-deps",
                            "--no-build-isolation", "-w", str(wheels), "-v"], check=True,
                           capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert "culex build: compiling failed" in built.stdout + built.stderr
    [wheel] = wheels.glob(f"culex-{culex.__version__}-*.whl")
    assert not [name for name in zipfile.ZipFile(wheel).namelist() if name.endswith(".so")]
    venv = tmp_path / "venv"
    # The venv sees this machine's packages (the dependencies: no network in tests) but
    # imports culex from the wheel.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True, timeout=300)
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import culex, importlib.metadata as m; "
                            "print(culex.__file__, m.version('culex'))"],
                           capture_output=True, text=True, check=True, timeout=60,
                           cwd=tmp_path).stdout.split()
    assert where[0].startswith(str(venv)) and where[1] == culex.__version__
    proc = subprocess.Popen([str(venv / "bin" / "culex"), "serve", "--listen", "127.0.0.1:0",
                             "--no-persistence"], stderr=subprocess.PIPE, text=True,
                            env=broker_env(str(tmp_path)), cwd=tmp_path)
    try:
        assert proc.stderr is not None
        said = []
        for line in proc.stderr:
            said.append(line)
            found = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            if found:
                break
        assert found
        assert f"culex {culex.__version__} (pure Python)" in "".join(said)
        client = Paho(int(found.group(1)), mqtt.MQTTv5, "from-the-wheel").connect()
        client.subscribe("w/#", 1)
        client.publish("w/x", b"ok", qos=1)
        assert client.get().payload == b"ok"
        client.disconnect()
    finally:
        proc.terminate()
        proc.wait(WAIT)
