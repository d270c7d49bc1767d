#!/usr/bin/env python3
"""Run the shared yardstick (../shared/bench/compare.py) against this tree and record it.

    python3 benchmarks/run.py              # full run (about 8 minutes): writes BENCHMARKS.md
    python3 benchmarks/run.py --only fanin # some scenarios, printed, not recorded
    python3 benchmarks/run.py --quick      # regression guard (under 2 minutes): prints the
                                           # throughput table and headline, writes nothing

Mosquitto and culex run side by side on loopback, driven by the same C load generator, and
every figure is quoted as a ratio to Mosquitto measured in the same run: the machines are
shared and absolute figures drift. Needs Debian's mosquitto and gcc.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "benchmarks" / "culex-bench.toml"
DEFAULT_COMPARE = ROOT.parent / "shared" / "bench" / "compare.py"
DOCUMENT = ROOT / "BENCHMARKS.md"


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def _machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="regression guard: headline only")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="", help="scenarios, as compare.py takes them")
    parser.add_argument("--compare", type=Path, default=DEFAULT_COMPARE,
                        help="path of the shared compare.py")
    parser.add_argument("--port", type=int, default=18940)
    args = parser.parse_args()
    if not args.compare.exists():
        print(f"benchmarks: {args.compare} not found (use --compare)", file=sys.stderr)
        return 2
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        print("benchmarks: Mosquitto is needed: apt-get install -y mosquitto gcc",
              file=sys.stderr)
        return 2
    culex = shutil.which("culex") or f"{sys.executable} -m culex"
    cmd = [sys.executable, str(args.compare), "--name", "culex", "--port", str(args.port),
           "--cmd", f"{culex} serve --config {CONFIG} --listen 127.0.0.1:{{port}}",
           "--runs", str(args.runs)]
    if args.quick:
        cmd += ["--quick", "--only", args.only or "fanin,fanout,qos1,qos2"]
    elif args.only:
        cmd += ["--only", args.only]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stderr[-4000:])
        return result.returncode
    table = result.stdout.strip()
    if args.quick or args.only:
        print(table)  # the last line is the headline ratio; a partial run is not recorded
        return 0
    commit = _version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    mosquitto = _version(["mosquitto", "-h"])
    mosquitto = re.sub(r"^mosquitto version ", "", mosquitto)
    python = f"Python {platform.python_version()}"
    try:
        import uvloop

        loop = f"uvloop {uvloop.__version__}"
    except ImportError:
        loop = "asyncio event loop (uvloop not installed)"
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    DOCUMENT.write_text(f"""# Benchmarks

Written by `python3 benchmarks/run.py` on {now}; do not edit by hand.

- Machine: {_machine()}
- culex: commit {commit}, {python}, {loop}, configuration `benchmarks/culex-bench.toml`
- Mosquitto: {mosquitto}, as configured by `../shared/bench/compare.py`
- Method: both brokers on loopback, driven by the same C load generator (mqbench), scenarios
  interleaved, median of {args.runs} runs. Ratios are culex / Mosquitto from this one run.

```
{table}
```
""")
    print(table)
    print(f"written to {DOCUMENT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
