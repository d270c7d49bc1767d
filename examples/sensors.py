#!/usr/bin/env python3
"""The house of temperature sensors: simulated sensors as a Raspberry Pi would run them.

Each sensor is its own MQTT client (paho-mqtt), as separate devices are: it says "online" on
`maison/<room>/<sensor>/status` (retained) and leaves a will saying "offline" there, then
publishes a reading every few seconds at QoS 1, values drifting as real ones do. The salon's
temperature is retained, so that a new subscriber knows the last value at once.

    python3 examples/sensors.py [--host localhost] [--port 1883] [--interval 2] [--count N]
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt


@dataclass
class Sensor:
    room: str
    kind: str
    value: float
    low: float
    high: float
    step: float
    unit: str
    retained: bool = False

    @property
    def topic(self) -> str:
        return f"maison/{self.room}/{self.kind}"

    def read(self) -> str:
        """The next reading: a small random walk that stays within a plausible range."""
        if self.kind == "porte":
            self.value = 1.0 - self.value if random.random() < 0.2 else self.value
            return "ouverte" if self.value else "fermée"
        self.value = min(self.high, max(self.low, self.value + random.uniform(-1, 1) * self.step))
        return f"{self.value:.1f}"


HOUSE = [
    Sensor("salon", "temperature", 21.0, 17.0, 28.0, 0.3, "°C", retained=True),
    Sensor("cuisine", "temperature", 22.5, 16.0, 30.0, 0.4, "°C"),
    Sensor("salon", "humidite", 45.0, 30.0, 70.0, 1.5, "%"),
    Sensor("entree", "porte", 0.0, 0.0, 1.0, 1.0, ""),
]


def run_sensor(sensor: Sensor, host: str, port: int, interval: float, count: int,
               stop: threading.Event) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                         client_id=f"capteur-{sensor.room}-{sensor.kind}")
    status = f"{sensor.topic}/status"
    client.will_set(status, "offline", qos=1, retain=True)
    client.connect(host, port, keepalive=30)
    client.loop_start()
    client.publish(status, "online", qos=1, retain=True)
    sent = 0
    while not stop.is_set() and (not count or sent < count):
        info = client.publish(sensor.topic, sensor.read(), qos=1, retain=sensor.retained)
        info.wait_for_publish(10)
        sent += 1
        stop.wait(interval * random.uniform(0.8, 1.2))
    client.publish(status, "offline", qos=1, retain=True).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between readings")
    parser.add_argument("--count", type=int, default=0, help="readings per sensor (0: forever)")
    args = parser.parse_args()
    stop = threading.Event()
    threads = [threading.Thread(target=run_sensor, daemon=True,
                                args=(sensor, args.host, args.port, args.interval, args.count,
                                      stop)) for sensor in HOUSE]
    for thread in threads:
        thread.start()
    try:
        while any(thread.is_alive() for thread in threads):
            time.sleep(0.2)
    except KeyboardInterrupt:
        stop.set()
        for thread in threads:
            thread.join(5)


if __name__ == "__main__":
    main()
