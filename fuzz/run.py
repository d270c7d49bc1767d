#!/usr/bin/env python3
"""Coverage-guided fuzzing of culex with atheris (libFuzzer for Python).

    python3 fuzz/run.py decoder -runs=1000000 [CORPUS_DIR]
    python3 fuzz/run.py connection -runs=1000000 -max_len=4096 [CORPUS_DIR]

Any option libFuzzer takes may follow the target's name (-runs, -max_total_time, -jobs ...).
A crash (an exception other than a clean refusal, an internal error logged, a broker that no
longer serves) stops the run with libFuzzer's report and the input that caused it, written as
crash-<sha1> in the current directory. The suite runs each target briefly
(tests/test_fuzz_harness.py); run it longer by hand before a release.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["culex"]):
    import culex.broker
    import culex.protocol  # noqa: F401

from targets import TARGETS


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        raise SystemExit(f"usage: run.py {{{','.join(TARGETS)}}} [libFuzzer options]")
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
