"""Shared by the benchmark scripts: run one phase in its own Python process, so that the peak
memory it reports (`ru_maxrss`) is that phase's alone, and read the JSON line it prints last."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

# Pasted at the top of a phase's script: `tree_usage()` gives the resident bytes and CPU seconds
# (user + sys, with those of reaped children) of this process and every descendant (Spark's JVM
# and its Python workers); a thread samples the resident set every 0.1 s into `peak[0]`.
TREE_SAMPLER = """
import os, threading

def tree_usage() -> tuple[int, float]:
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    cpu: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        cpu[int(entry)] = sum(int(f) for f in fields[11:15])
    total, ticks, todo = 0, 0, [os.getpid()]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        ticks += cpu.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total, ticks / os.sysconf("SC_CLK_TCK")

peak = [0]
sampling = threading.Event()

def _sample() -> None:
    while not sampling.wait(0.1):
        peak[0] = max(peak[0], tree_usage()[0])

threading.Thread(target=_sample, daemon=True).start()
"""


def run_phase(
    script: str,
    phase: str,
    out: Path,
    home: Path,
    args: argparse.Namespace,
    extra: tuple[str, ...] = (),
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
            *extra,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(f"{phase} failed:\n{completed.stderr}")
    result: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result
