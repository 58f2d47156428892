"""What the notebooks share: opening the home the analyst meant, and saying which one it is.

Jupyter starts a notebook's kernel in the notebook's folder (``notebooks/``), not in the folder
Jupyter was started from, so ``ACCESS_AUDIT_HOME=demo/home jupyter lab notebooks/`` would look for
``notebooks/demo/home``. The kernel inherits the shell's environment, ``PWD`` included, so a
relative home is resolved against ``$PWD``: the folder the command was typed in. Where ``PWD`` is
not passed on (some IDEs and kernel gateways), an absolute ``ACCESS_AUDIT_HOME`` always works.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from access_audit.workspace import HOME_ENV, Workspace

# Without the variables: what `make demo` writes, seen from the kernel's folder (notebooks/).
DEMO_HOME = Path("..") / "demo" / "home"
TRUTH_ENV = "ACCESS_AUDIT_TRUTH"
DEMO_TRUTH = Path("..") / "demo" / "drops" / "truth.csv"


def notebook_path(
    variable: str,
    default: Path,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Path:
    """A path a notebook is given in an environment variable, relative to the folder Jupyter was
    started in; else `default`, relative to the notebook's folder."""
    env = os.environ if environ is None else environ
    here = Path.cwd() if cwd is None else cwd
    given = env.get(variable, "")
    if not given:
        return (here / default).resolve()
    path = Path(given).expanduser()
    if path.is_absolute():
        return path
    launched = env.get("PWD", "")
    return ((Path(launched) if launched else here) / path).resolve()


def open_workspace() -> Workspace:
    """The notebooks' first cell: open the home (never create one) and print which it is."""
    home = notebook_path(HOME_ENV, DEMO_HOME)
    print(f"access-audit home: {home}")
    return Workspace.open(home, create=False)


def truth_file() -> Path:
    """The generator's truth.csv for evaluation: $ACCESS_AUDIT_TRUTH, else the demo's."""
    truth = notebook_path(TRUTH_ENV, DEMO_TRUTH)
    print(f"truth file: {truth}")
    return truth
