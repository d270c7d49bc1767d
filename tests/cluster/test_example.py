"""examples/cluster/run.py: three NATS servers, three culex nodes and a round-robin front on
one machine; a subscriber and a publisher that reach two different nodes through the front
see one broker."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

from support import WAIT

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
        sub = subprocess.Popen(["stdbuf", "-oL", "mosquitto_sub", "-d", "-p", front, "-t",
                                "maison/#", "-v", "-C", "1", "-W", str(int(WAIT)), "-q", "1"],
                               stdout=subprocess.PIPE, text=True)
        assert sub.stdout is not None
        for line in sub.stdout:
            if "received SUBACK" in line:
                break
        subprocess.run(["mosquitto_pub", "-p", front, "-t", "maison/salon/temperature", "-m",
                        "21.5", "-q", "1"], check=True, timeout=WAIT)
        out, _ = sub.communicate(timeout=WAIT)
        assert "maison/salon/temperature 21.5" in out.splitlines()
    finally:
        run.send_signal(signal.SIGTERM)
        run.wait(3 * WAIT)
    assert run.returncode == 0
