"""Temporary files left by runs that died (a full disk, a kill, a power cut), removed by the next.

A temporary file names the process writing it (``…<pid>…``), so a run removes only those whose
writer is gone: two runs may build the analysts' database at once, each in its own file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path


def process_is_running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: running, and not ours to judge
    return True


def remove_files_of_dead_processes(folder: Path, pattern: re.Pattern[str]) -> list[Path]:
    """Remove the files in ``folder`` whose name matches ``pattern`` (with a ``pid`` group) and
    whose process is no longer running; the paths removed."""
    if not folder.is_dir():
        return []
    removed = []
    for entry in folder.iterdir():
        match = pattern.match(entry.name)
        if match is None or process_is_running(int(match["pid"])):
            continue
        entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed
