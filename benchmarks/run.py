#!/usr/bin/env python3
"""Run the shared yardstick (../shared/bench/compare.py) against this tree and record it.

    python3 benchmarks/run.py              # full run (about 8 minutes): writes BENCHMARKS.md
    python3 benchmarks/run.py --only fanin # some scenarios, printed, not recorded
    python3 benchmarks/run.py --quick      # regression guard (under 2 minutes): prints the
                                           # throughput table and headline, writes nothing
    python3 benchmarks/run.py --persistent # QoS 1/2 to a persistent subscriber, printed
    python3 benchmarks/run.py --pure       # any of these with culex installed as pure Python
    python3 benchmarks/run.py --in-place   # any of these with this interpreter's culex

culex runs as a user gets it: installed by pip from this tree into a fresh virtualenv (with
the `speed` extra). Memory is measured on that, not on a development interpreter, whose
site-packages may load more at start (a .pth file that imports a package costs every Python
process there its memory).

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
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "benchmarks" / "culex-bench.toml"
DEFAULT_COMPARE = ROOT.parent / "shared" / "bench" / "compare.py"
DOCUMENT = ROOT / "BENCHMARKS.md"
ABUSE_HEADING = "## Floods and slow readers"


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


# mqbench connects every client with a clean session. For the persistent scenarios a copy of it
# is built whose subscriber connects with Clean Session 0: its messages then go through culex's
# store, while Mosquitto (persistence false, as compare.py configures it) keeps them in memory.
# Client ids lose mqbench's process id, so that each run resumes the subscriber session of the
# run before (emptied by then) instead of leaving one more offline session that queues every
# later message.
_PATCHES = [
    ('memcpy(p, "\\0\\4MQTT\\4\\2", 8); p += 8;',
     'memcpy(p, "\\0\\4MQTT\\4\\2", 8); p += 8; if (c->role == R_SUB) p[-1] = 0;'),
    ('"mqb-%d-%c%d", (int)getpid(),', '"mqb-%d-%c%d", 0,'),
]


def build_persistent_mqbench(compare: Path, directory: Path) -> Path:
    source = (compare.parent / "mqbench.c").read_text()
    for old, new in _PATCHES:
        if source.count(old) != 1:
            raise SystemExit("benchmarks: mqbench.c has changed; cannot make its subscriber "
                             f"persistent (see _PATCHES in benchmarks/run.py): {old}")
        source = source.replace(old, new)
    patched = directory / "mqbench-persistent.c"
    patched.write_text(source)
    binary = directory / "mqbench"
    subprocess.run(["gcc", "-O2", "-Wall", "-o", str(binary), str(patched)], check=True)
    return binary


def install(directory: Path, pure: bool = False) -> str:
    """culex installed from this tree into a new virtualenv in ``directory`` (compiled, or
    pure Python); its command."""
    subprocess.run([sys.executable, "-m", "venv", str(directory)], check=True)
    env = dict(os.environ)
    env.pop("CULEX_PURE_PYTHON", None)
    if pure:
        env["CULEX_PURE_PYTHON"] = "1"
    subprocess.run([str(directory / "bin" / "python"), "-m", "pip", "install", "-q",
                    "--disable-pip-version-check", f"{ROOT}[speed]"], check=True, env=env)
    command = str(directory / "bin" / "culex")
    print(_version([command, "--version"]), file=sys.stderr)
    return command


def compare(args: argparse.Namespace, only: str, extra: str = "", quick: bool = False,
            env: dict[str, str] | None = None) -> str:
    """One compare.py run against a culex with a fresh data directory; its table."""
    culex = args.culex
    with tempfile.TemporaryDirectory(prefix="culex-bench-") as data:
        cmd = [sys.executable, str(args.compare), "--name", "culex", "--port", str(args.port),
               "--cmd", f"{culex} serve --config {CONFIG} --data-dir {data} {extra}"
                        f"--listen 127.0.0.1:{{port}}",
               "--runs", str(args.runs)]
        if quick:
            cmd.append("--quick")
        if only:
            cmd += ["--only", only]
        result = subprocess.run(cmd, capture_output=True, text=True,
                                env=dict(os.environ, **(env or {})))
    if result.returncode != 0:
        sys.stderr.write(result.stderr[-4000:])
        raise SystemExit(result.returncode)
    return result.stdout.strip()


def persistent_tables(args: argparse.Namespace) -> str:
    with tempfile.TemporaryDirectory(prefix="mqbench-persistent-") as build:
        env = {"MQBENCH_BIN": str(build_persistent_mqbench(args.compare, Path(build)))}
        full = compare(args, "qos1,qos2", env=env)
        periodic = compare(args, "qos1,qos2", "--durability periodic ", env=env)
    return (f"Full durability (the default):\n\n```\n{full}\n```\n\n"
            f"Periodic durability (`--durability periodic`):\n\n```\n{periodic}\n```\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="regression guard: headline only")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="", help="scenarios, as compare.py takes them")
    parser.add_argument("--compare", type=Path, default=DEFAULT_COMPARE,
                        help="path of the shared compare.py")
    parser.add_argument("--port", type=int, default=18940)
    parser.add_argument("--persistent", action="store_true",
                        help="only the QoS 1/2 scenarios to a persistent subscriber")
    parser.add_argument("--pure", action="store_true",
                        help="install culex as pure Python (not compiled); printed only")
    parser.add_argument("--in-place", action="store_true",
                        help="run the culex of this interpreter instead of installing one")
    args = parser.parse_args()
    if not args.compare.exists():
        print(f"benchmarks: {args.compare} not found (use --compare)", file=sys.stderr)
        return 2
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        print("benchmarks: Mosquitto is needed: apt-get install -y mosquitto gcc",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="culex-venv-") as venv:
        if args.in_place:
            args.culex = shutil.which("culex") or f"{sys.executable} -m culex"
            args.python = sys.executable
        else:
            args.culex = install(Path(venv), args.pure)
            args.python = str(Path(venv) / "bin" / "python")
        return run(args)


def run(args: argparse.Namespace) -> int:
    if args.persistent:
        print(persistent_tables(args))
        return 0
    if args.quick:
        table = compare(args, args.only or "fanin,fanout,qos1,qos2", quick=True)
    else:
        table = compare(args, args.only)
    if args.quick or args.only or args.pure:
        print(table)  # the last line is the headline ratio; a partial run is not recorded
        return 0
    persistent = persistent_tables(args)
    # The same scenarios on the same installation with the sources imported instead of the
    # compiled modules (shorter runs: --quick sizes).
    pure = compare(args, "", quick=True, env={"CULEX_PURE_PYTHON": "1"})
    commit = _version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    mosquitto = _version(["mosquitto", "-h"])
    mosquitto = re.sub(r"^mosquitto version ", "", mosquitto)
    python = "Python " + _version([args.python, "-c", "import platform; "
                                   "print(platform.python_version())"])
    loop = _version([args.python, "-c", "import uvloop; print('uvloop', uvloop.__version__)"])
    if not loop.startswith("uvloop"):
        loop = "asyncio event loop (uvloop not installed)"
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    # The section benchmarks/abuse.py records is its own, and kept.
    old = DOCUMENT.read_text() if DOCUMENT.exists() else ""
    abuse = old[old.index(ABUSE_HEADING):] if ABUSE_HEADING in old else ""
    DOCUMENT.write_text(f"""# Benchmarks

Written by `python3 benchmarks/run.py` on {now}; do not edit by hand.

- Machine: {_machine()}
- culex: commit {commit}, {python}, {loop}, configuration `benchmarks/culex-bench.toml`
- Mosquitto: {mosquitto}, as configured by `../shared/bench/compare.py`
- Method: both brokers on loopback, driven by the same C load generator (mqbench), scenarios
  interleaved, median of {args.runs} runs. Ratios are culex / Mosquitto from this one run.
  culex is installed by pip from this tree into a fresh virtualenv, as a user gets it, and
  starts with an empty data directory (its store file is created by the first write).

```
{table}
```

## Pure Python

The same installation run with `CULEX_PURE_PYTHON=1`, which imports the sources instead of
the modules mypyc compiled (what a machine without a C compiler installs), with the shorter
runs of `compare.py --quick` (fewer messages, 1,000 and 2,000 connections):

```
{pure}
```

## QoS 1 and 2 to a persistent subscriber

The same scenarios with a subscriber that connects with Clean Session 0 (mqbench built with
that one change by `benchmarks/run.py`). culex writes every message to its store before the
publisher's acknowledgement; Mosquitto (`persistence false`) keeps them in memory only.

{persistent}""" + ("\n" + abuse if abuse else ""))
    print(table)
    print(f"written to {DOCUMENT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
