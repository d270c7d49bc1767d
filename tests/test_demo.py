"""The house of temperature sensors: the examples and ``culex demo``, end to end."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from support import WAIT, running_broker
from web_support import login, request

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_culex_demo_shows_the_readings_here_and_on_the_dashboard(tmp_path: Path) -> None:
    demo = subprocess.Popen([sys.executable, "-m", "culex", "demo", "--port", "0",
                             "--http-port", "0", "--interval", "0.2", "--duration", "30",
                             "--password", "maison-pw"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    assert demo.stdout is not None
    lines: list[str] = []
    try:
        for line in demo.stdout:
            lines.append(line)
            if line.startswith("sensors:"):
                break
        out = "".join(lines)
        assert re.search(r"^broker: +mqtt://127\.0\.0\.1:\d+", out, re.M), out
        assert re.search(r"^metrics: +http://127\.0\.0\.1:\d+/metrics", out, re.M)
        found = re.search(r"^dashboard: +http://127\.0\.0\.1:(\d+)/ +\(user demo, password "
                          r"maison-pw\)", out, re.M)
        assert found, out
        port = int(found.group(1))
        # The readings reach the dashboard's topic tree, with a history for the salon.
        status, cookie, _ = login(port, "demo", "maison-pw")
        assert status == 200
        assert login(port, "demo", "wrong")[0] == 401
        deadline = time.monotonic() + WAIT
        history: list[object] = []
        while len(history) < 2 and time.monotonic() < deadline:
            status, _, body = request(port, "GET", "/api/topic?name=maison/salon/temperature",
                                      headers={"Cookie": cookie})
            if status == 200:
                history = json.loads(body)["history"]
        assert len(history) >= 2
        topics = {t["topic"] for t in json.loads(
            request(port, "GET", "/api/topics", headers={"Cookie": cookie})[2])["topics"]}
        assert {"maison/salon/temperature", "maison/cuisine/temperature",
                "maison/salon/humidite", "maison/entree/porte"} <= topics
        # ... and the subscriber, whose lines the demo shows.
        wanted = [r"salon +temperature +\d+\.\d °C", r"cuisine +temperature +\d+\.\d °C",
                  r"salon +humidite +\d+\.\d %", r"entree +porte +(ouverte|fermée)",
                  r"salon +temperature +online"]
        for line in demo.stdout:
            lines.append(line)
            text = "".join(lines)
            if all(re.search(reading, text) for reading in wanted):
                break
        text = "".join(lines)
        for reading in wanted:
            assert re.search(reading, text), reading
    finally:
        demo.send_signal(signal.SIGTERM)  # as a service manager would: it ends its children
        demo.communicate(timeout=WAIT)
    assert demo.returncode == 0


def test_sensors_drift_retain_and_leave_a_will() -> None:
    with running_broker("--no-persistence") as broker:
        where = ["--host", "127.0.0.1", "--port", str(broker.port)]
        sensors = subprocess.run([sys.executable, str(EXAMPLES / "sensors.py"), *where,
                                  "--interval", "0.05", "--count", "20"],
                                 capture_output=True, timeout=60)
        assert sensors.returncode == 0, sensors.stderr
        # The salon's temperature is retained: a late subscriber knows it at once.
        last = subprocess.run(["mosquitto_sub", "-p", str(broker.port), "-t",
                               "maison/salon/temperature", "-C", "1", "-W", "5"],
                              capture_output=True, text=True, timeout=WAIT)
        assert 17.0 <= float(last.stdout) <= 28.0
        # A sensor that dies says so through its will.
        running = subprocess.Popen([sys.executable, str(EXAMPLES / "sensors.py"), *where,
                                    "--interval", "0.1"])
        watch = subprocess.Popen(["stdbuf", "-oL", "mosquitto_sub", "-p", str(broker.port),
                                  "-t", "maison/cuisine/temperature/status", "-v"],
                                 stdout=subprocess.PIPE, text=True)
        assert watch.stdout is not None
        for line in watch.stdout:
            if line.strip().endswith("online"):
                break
        running.send_signal(signal.SIGKILL)
        running.wait(WAIT)
        for line in watch.stdout:
            if line.strip().endswith("offline"):
                break
        watch.kill()
