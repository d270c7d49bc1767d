"""``culex demo``: the house of temperature sensors, live.

A broker with its dashboard, the simulated sensors of ``examples/sensors.py`` and the subscriber
of ``examples/subscriber.py``, each its own process as the devices of a real house are; the
subscriber's lines are shown here. The dashboard's user is ``demo``, with a password made for
this run and printed with its address. It runs from a source checkout (the examples
are there) with paho-mqtt installed (``pip install '.[demo]'``).
"""

from __future__ import annotations

import argparse
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="culex demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=1883, help="MQTT port (0: any free one)")
    parser.add_argument("--http-port", type=int, default=9883,
                        help="HTTP port of the dashboard and metrics (0: any free one)")
    parser.add_argument("--password", default=None,
                        help="the dashboard user's password (default: a new random one)")
    parser.add_argument("--interval", type=float, default=2.0,
                        help="seconds between a sensor's readings")
    parser.add_argument("--duration", type=float, default=0.0,
                        help="seconds to run (0: until Ctrl-C)")
    args = parser.parse_args(argv)
    if not (EXAMPLES / "sensors.py").exists():
        print(f"culex demo: the examples are not here ({EXAMPLES}): run it from a clone of the "
              "repository", file=sys.stderr)
        return 1
    try:
        import paho.mqtt.client  # noqa: F401
    except ImportError:
        print("culex demo: the sensors need paho-mqtt: pip install paho-mqtt (or '.[demo]')",
              file=sys.stderr)
        return 1
    # A service manager's or kill's SIGTERM ends the demo as Ctrl-C does: its broker, sensors
    # and subscriber with it.
    signal.signal(signal.SIGTERM, _interrupt)
    with tempfile.TemporaryDirectory(prefix="culex-demo-") as directory:
        return _run(args, Path(directory))


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _run(args: argparse.Namespace, directory: Path) -> int:
    from .auth import hash_password, write_password_file

    password = args.password or secrets.token_urlsafe(9)
    passwd = directory / "passwd"
    write_password_file(passwd, {"demo": hash_password(password.encode())})
    config = directory / "culex.toml"
    config.write_text("\n".join([
        "persistence = false", "sys_interval = 2",
        # The sensors are anonymous, as many are; the dashboard asks for the demo user.
        "allow_anonymous = true", f"password_file = {str(passwd)!r}",
        'dashboard_users = ["demo"]',
        "[[listener]]", f"port = {args.port}",
        "[[listener]]", f"port = {args.http_port}", 'protocol = "http"',
        "dashboard = true"]) + "\n")
    log = directory / "culex.log"
    broker = subprocess.Popen([sys.executable, "-m", "culex", "serve", "--config", str(config)],
                              stderr=log.open("w"))
    processes = [broker]
    try:
        ports = _listening(log, broker)
        if ports is None:
            sys.stderr.write(log.read_text())
            return 1
        mqtt_port, http_port = ports
        print(f"broker:    mqtt://127.0.0.1:{mqtt_port}  (culex sub -p {mqtt_port} -t 'maison/#'"
              " -v)")
        print(f"dashboard: http://127.0.0.1:{http_port}/  (user demo, password {password})")
        print(f"metrics:   http://127.0.0.1:{http_port}/metrics")
        print("sensors:   salon and cuisine temperature, salon humidity, the front door\n",
              flush=True)
        where = ["--host", "127.0.0.1", "--port", str(mqtt_port)]
        processes.append(subprocess.Popen([sys.executable, "-u", str(EXAMPLES / "subscriber.py"),
                                           *where]))
        time.sleep(0.3)  # the subscriber subscribes before the sensors speak (a demo nicety)
        processes.append(subprocess.Popen([sys.executable, str(EXAMPLES / "sensors.py"), *where,
                                           "--interval", str(args.interval)]))
        deadline = time.monotonic() + args.duration if args.duration else None
        while all(process.poll() is None for process in processes):
            if deadline is not None and time.monotonic() >= deadline:
                break
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
    return 0


def _listening(log: Path, broker: subprocess.Popen[bytes]) -> tuple[int, int] | None:
    """The MQTT and HTTP ports the broker listens on, once it says so."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and broker.poll() is None:
        text = log.read_text() if log.exists() else ""
        mqtt_port = re.search(r"listening on \S+:(\d+) \(MQTT\)", text)
        http_port = re.search(r"listening on \S+:(\d+) \(HTTP\)", text)
        if mqtt_port and http_port:
            return int(mqtt_port.group(1)), int(http_port.group(1))
        time.sleep(0.05)
    return None


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
