"""Logs: JSON lines with the facts as keys, a log file that SIGHUP reopens after logrotate
moved it, and clear errors for a bad destination."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from culex.observability._logs import JsonFormatter

from paho_client import Paho
from support import WAIT, broker_env


def wait_for_line(path: Path, pattern: str) -> dict[str, object]:
    """The first JSON line of ``path`` whose message matches ``pattern``."""
    deadline = time.monotonic() + WAIT
    regex = re.compile(pattern)
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text().splitlines():
                entry = json.loads(line)  # every line is one JSON object
                if regex.search(entry["message"]):
                    return entry
        time.sleep(0.02)  # polling a file: there is no event to wait on
    raise AssertionError(f"no line matching {pattern!r} in {path}")


def test_json_lines_in_a_file_reopened_on_sighup(tmp_path: Path) -> None:
    log = tmp_path / "culex.log"
    (tmp_path / "culex.toml").write_text(
        f'log_format = "json"\nlog_dest = "file {log}"\npersistence = false\n'
        '[[listener]]\nport = 0\nbind_address = "127.0.0.1"\n')
    proc = subprocess.Popen([sys.executable, "-m", "culex", "serve", "-c",
                             str(tmp_path / "culex.toml")], stderr=subprocess.PIPE, text=True,
                            env=broker_env(str(tmp_path)))
    try:
        listening = wait_for_line(log, r"listening on 127\.0\.0\.1:\d+")
        port = int(re.findall(r":(\d+)", str(listening["message"]))[0])
        assert listening["level"] == "info" and listening["event"] == "log"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(listening["time"]))
        client = Paho(port, mqtt.MQTTv311, "json-client").connect()
        connected = wait_for_line(log, "connected: client json-client")
        assert connected["event"] == "connected" and connected["client_id"] == "json-client"
        assert str(connected["peer"]).startswith("127.0.0.1:")
        client.disconnect()
        gone = wait_for_line(log, "disconnected: client json-client")
        assert (gone["event"], gone["reason"]) == ("disconnected", "client")
        # logrotate moves the file away and sends SIGHUP: the broker writes a new one.
        rotated = tmp_path / "culex.log.1"
        os.rename(log, rotated)
        proc.send_signal(signal.SIGHUP)
        wait_for_line(log, "SIGHUP")
        again = Paho(port, mqtt.MQTTv311, "after-rotation").connect()
        wait_for_line(log, "connected: client after-rotation")
        again.disconnect()
        assert "after-rotation" not in rotated.read_text()
    finally:
        proc.terminate()
        proc.wait(WAIT)
    assert proc.returncode == 0
    assert proc.stderr is not None and proc.stderr.read() == ""  # everything went to the file


def test_bad_destinations_are_configuration_errors(tmp_path: Path) -> None:
    for dest, words in (("syslog", "expected stderr, stdout, none or 'file PATH'"),
                        (f"file {tmp_path}/missing/dir/culex.log",
                         "cannot open the log file")):
        (tmp_path / "culex.toml").write_text(f'log_dest = "{dest}"\n')
        result = subprocess.run([sys.executable, "-m", "culex", "serve", "-c",
                                 str(tmp_path / "culex.toml")], capture_output=True, text=True,
                                timeout=WAIT, env=broker_env(str(tmp_path)))
        assert result.returncode == 2 and words in result.stderr, result.stderr


def test_json_formatter_derives_the_event_and_keeps_the_facts() -> None:
    formatter = JsonFormatter()
    record = logging.LogRecord("culex", logging.WARNING, __file__, 1,
                               "refused: connection from %s: %s", ("10.0.0.1:5", "why"), None)
    record.peer = "10.0.0.1:5"
    entry = json.loads(formatter.format(record))
    assert entry["event"] == "refused" and entry["peer"] == "10.0.0.1:5"
    assert entry["message"] == "refused: connection from 10.0.0.1:5: why"
    assert "client_id" not in entry
    plain = logging.LogRecord("culex", logging.INFO, __file__, 1, "stopped", (), None)
    assert json.loads(formatter.format(plain))["event"] == "log"
