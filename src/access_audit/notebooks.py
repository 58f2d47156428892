"""Run the analysts' notebooks against a home and keep the executed copies, owner-only.

An executed notebook's outputs list flags, officers' ids and subjects, so its copy is written like
every other file outside the home: a ``0600`` temporary renamed into place, in an owner-only
folder. (Jupyter itself saves with the permissions of the file it replaces.) The notebooks in the
repository stay without outputs. Needs the dev extra (nbclient, nbformat, ipykernel); `make
notebooks` runs them against the demo home::

    python -m access_audit.notebooks --home HOME --out FOLDER notebooks/*.ipynb
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from access_audit.errors import AccessAuditError
from access_audit.private_files import private_folder, replacing
from access_audit.workspace import HOME_ENV

TRUTH_ENV = "ACCESS_AUDIT_TRUTH"


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """The kernel inherits this process's environment: the notebooks read the home from it."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def execute_notebooks(
    sources: Sequence[Path],
    out: Path,
    home: Path,
    truth: Path | None = None,
    timeout: int = 600,
) -> list[Path]:
    """Execute each notebook against ``home``; write ``out/<name>`` owner-only; return them."""
    try:
        import nbformat
        from nbclient import NotebookClient
    except ImportError as exc:
        raise AccessAuditError(
            "running notebooks needs nbclient: install access-audit[dev]"
        ) from exc
    private_folder(out)
    values = {HOME_ENV: str(home.absolute())}
    if truth is not None:
        values[TRUTH_ENV] = str(truth.absolute())
    written = []
    with _environment(values):
        for source in sources:
            document = nbformat.read(source, as_version=4)  # type: ignore[no-untyped-call]
            client = NotebookClient(
                document,
                timeout=timeout,
                kernel_name="python3",
                resources={"metadata": {"path": str(source.parent.absolute())}},
            )
            client.execute()
            target = out / source.name
            with replacing(target) as temporary:
                nbformat.write(document, str(temporary))  # type: ignore[no-untyped-call]
            written.append(target)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run notebooks; keep owner-only copies.")
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--truth", type=Path)
    args = parser.parse_args(argv)
    if not (args.home / "store").is_dir():
        parser.exit(2, f"no access-audit home at {args.home} (run `make demo` first)\n")
    for path in execute_notebooks(args.notebooks, args.out, args.home, args.truth):
        print(path)


if __name__ == "__main__":  # pragma: no cover
    main()
