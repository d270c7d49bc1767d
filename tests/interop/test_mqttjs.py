"""MQTT.js (Node.js), the client of browser and Node applications."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from support import WAIT, BrokerProcess

HERE = Path(__file__).parent / "js"
assert shutil.which("node") and (HERE / "node_modules" / "mqtt").exists(), \
    "Node.js and MQTT.js are needed: run scripts/test"


@pytest.mark.parametrize("qos", [0, 1, 2])
@pytest.mark.parametrize("protocol_version", [3, 4, 5])
def test_mqttjs_publish_subscribe(broker: BrokerProcess, protocol_version: int, qos: int) -> None:
    result = subprocess.run(["node", str(HERE / "roundtrip.mjs"), str(broker.port),
                             str(protocol_version), str(qos)], capture_output=True, text=True,
                            timeout=WAIT * 2)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"topic": f"js/{i}", "payload": f"message {i}", "qos": qos} for i in range(3)]


def test_mqttjs_resolves_the_topic_aliases_it_is_sent(broker: BrokerProcess) -> None:
    result = subprocess.run(["node", str(HERE / "roundtrip.mjs"), str(broker.port), "5", "1",
                             "4"], capture_output=True, text=True, timeout=WAIT * 2)
    assert result.returncode == 0, result.stderr
    # Every message reaches the application with its topic; on the wire all carried alias 1,
    # the first with the topic, the others without.
    assert json.loads(result.stdout) == [
        {"topic": "js/aliased", "payload": f"message {i}", "qos": 1, "alias": 1}
        for i in range(3)]
