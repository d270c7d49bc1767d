"""examples/cluster/run.py: three NATS servers, three culex nodes and a round-robin front on
one machine; a subscriber and a publisher that reach two different nodes through the front
see one broker."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

from support import WAIT, mosquitto_sub, sub_lines

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cluster" / "run.py"


def test_the_cluster_example_is_one_broker() -> None:
    run = subprocess.Popen([sys.executable, str(EXAMPLE), "--port", "0", "--duration", "120"],
                           stdout=subprocess.PIPE, text=True)
    assert run.stdout is not None
    try:
        front = None
        for line in run.stdout:
            found = re.match(r"front: mqtt://127\.0\.0\.1:(\d+)", line)
            if found:
                front = found.group(1)
                break
        assert front is not None
        # The front sends each new connection to the next node: the subscriber lands on one,
        # the publisher on the next.
        sub = mosquitto_sub(int(front), "-t", "maison/#", "-v", "-C", "1", "-W",
                            str(int(WAIT)), "-q", "1")
        subprocess.run(["mosquitto_pub", "-p", front, "-t", "maison/salon/temperature", "-m",
                        "21.5", "-q", "1"], check=True, timeout=WAIT)
        assert sub_lines(sub) == ["maison/salon/temperature 21.5"]
    finally:
        run.send_signal(signal.SIGTERM)
        run.wait(3 * WAIT)
    assert run.returncode == 0
