"""Shared by the benchmark scripts: run one phase in its own Python process, so that the peak
memory it reports (`ru_maxrss`) is that phase's alone, and read the JSON line it prints last."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def run_phase(
    script: str, phase: str, out: Path, home: Path, args: argparse.Namespace
) -> dict[str, object]:
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            phase,
            str(out),
            str(home),
            str(args.staff),
            str(args.days),
            str(args.seed),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(f"{phase} failed:\n{completed.stderr}")
    result: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result
