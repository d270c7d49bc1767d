"""The house of temperature sensors: the examples and ``culex demo``, end to end."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

from support import WAIT, running_broker

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_culex_demo_shows_the_readings(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "culex", "demo", "--port", "0",
                             "--http-port", "0", "--interval", "0.2", "--duration", "3"],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"^broker: +mqtt://127\.0\.0\.1:\d+", out, re.M)
    assert re.search(r"^metrics: +http://127\.0\.0\.1:\d+/metrics", out, re.M)
    for reading in (r"salon +temperature +\d+\.\d °C", r"cuisine +temperature +\d+\.\d °C",
                    r"salon +humidite +\d+\.\d %", r"entree +porte +(ouverte|fermée)",
                    r"salon +temperature +online"):
        assert re.search(reading, out), reading


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
