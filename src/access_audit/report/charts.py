"""Small self-contained SVG charts for the HTML report and the notebooks: no JavaScript, no
external files, every label escaped."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

WIDTH, HEIGHT, MARGIN = 720, 260, 48
COLOURS = {"bar": "#2f5d8a", "alert": "#b03a2e", "explained": "#7f8c8d", "unexplained": "#b03a2e"}


def _frame(title: str, body: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
        f'<text x="{MARGIN}" y="18" font-size="14" font-weight="bold">{escape(title)}</text>'
        f"{body}</svg>"
    )


def bar_chart(
    title: str, labels: Sequence[str], values: Sequence[float], colour: str = "bar"
) -> str:
    """Vertical bars with their values; an empty chart says so."""
    if not values:
        return _frame(title, f'<text x="{MARGIN}" y="{HEIGHT // 2}">nothing in this period</text>')
    top = max(*values, 1)
    plot_w, plot_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN
    step = plot_w / len(values)
    bars = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * value / top
        x = MARGIN + i * step
        y = MARGIN + plot_h - h
        bars.append(
            f'<rect class="bar" x="{x + step * 0.1:.1f}" y="{y:.1f}" width="{step * 0.8:.1f}" '
            f'height="{h:.1f}" fill="{COLOURS[colour]}"><title>{escape(label)}: {value:g}</title>'
            f"</rect>"
            f'<text x="{x + step / 2:.1f}" y="{y - 3:.1f}" font-size="10" text-anchor="middle">'
            f"{value:g}</text>"
        )
        if len(values) <= 16 or i % max(1, len(values) // 12) == 0:
            bars.append(
                f'<text x="{x + step / 2:.1f}" y="{HEIGHT - MARGIN + 14}" font-size="10" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    axis = (
        f'<line x1="{MARGIN}" y1="{HEIGHT - MARGIN}" x2="{WIDTH - MARGIN}" '
        f'y2="{HEIGHT - MARGIN}" stroke="#333"/>'
    )
    return _frame(title, axis + "".join(bars))


def timeline(
    title: str, times: Sequence[datetime], explained: Sequence[bool], lanes: Sequence[str]
) -> str:
    """One dot per access along time, one lane per subject; red when nothing explains it."""
    if not times:
        return _frame(title, f'<text x="{MARGIN}" y="{HEIGHT // 2}">no accesses</text>')
    names = list(dict.fromkeys(lanes))[:12]
    start, end = min(times), max(times)
    span = max((end - start).total_seconds(), 1.0)
    plot_w = WIDTH - 2 * MARGIN - 80
    lane_h = (HEIGHT - 2 * MARGIN) / max(len(names), 1)
    dots = []
    for when, ok, lane in zip(times, explained, lanes, strict=True):
        if lane not in names:
            continue
        x = MARGIN + 80 + plot_w * (when - start).total_seconds() / span
        y = MARGIN + lane_h * (names.index(lane) + 0.5)
        colour = COLOURS["explained" if ok else "unexplained"]
        dots.append(
            f'<circle class="{"explained" if ok else "unexplained"}" cx="{x:.1f}" cy="{y:.1f}" '
            f'r="4" fill="{colour}"><title>{escape(lane)} {when:%Y-%m-%d %H:%M}'
            f"{'' if ok else ' (unexplained)'}</title></circle>"
        )
    labels = "".join(
        f'<text x="{MARGIN}" y="{MARGIN + lane_h * (i + 0.5) + 4:.1f}" font-size="10">'
        f"{escape(name)}</text>"
        for i, name in enumerate(names)
    )
    axis = (
        f'<text x="{MARGIN + 80}" y="{HEIGHT - 12}" font-size="10">{start:%Y-%m-%d}</text>'
        f'<text x="{WIDTH - MARGIN}" y="{HEIGHT - 12}" font-size="10" text-anchor="end">'
        f"{end:%Y-%m-%d}</text>"
    )
    return _frame(title, labels + axis + "".join(dots))
