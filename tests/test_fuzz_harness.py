"""The coverage-guided fuzzer (fuzz/run.py, atheris) on each target, for a CI-sized number of
inputs: no crash, no internal error, no hang. Run it longer by hand (fuzz/run.py's docstring)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parent.parent / "fuzz" / "run.py"

atheris = pytest.importorskip("atheris", reason="atheris has wheels for x86-64 Linux only")


@pytest.mark.parametrize(("target", "runs"), [("decoder", 30_000), ("connection", 5_000)])
def test_the_fuzzer_finds_nothing(target: str, runs: int, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(RUN), target, f"-runs={runs}", "-max_len=4096", "-seed=1",
         "-timeout=10", f"-artifact_prefix={tmp_path}/"],
        capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Done {runs} runs" in result.stderr
