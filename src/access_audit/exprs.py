"""Small polars expression helpers shared by the stages (kept apart so that importing one does
not import the scoring engine)."""

from __future__ import annotations

import polars as pl


def fmt(template: str, *args: pl.Expr | str) -> pl.Expr:
    """Like `pl.format` (strings name columns), built from `concat_str`: polars 2.1's streaming
    engine panics on `pl.format` over filtered string columns."""
    pieces = template.split("{}")
    if len(pieces) != len(args) + 1:
        raise ValueError(f"{template!r} needs {len(pieces) - 1} argument(s)")
    parts: list[pl.Expr] = []
    for piece, arg in zip(pieces, [*args, None], strict=True):
        if piece:
            parts.append(pl.lit(piece))
        if arg is not None:
            parts.append((pl.col(arg) if isinstance(arg, str) else arg).cast(pl.String))
    return pl.concat_str(parts) if parts else pl.lit("")
