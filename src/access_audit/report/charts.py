"""Small self-contained SVG charts for the HTML report and the notebooks: no JavaScript, no
external files, every label escaped."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from access_audit.escape import html_text as escape

WIDTH, HEIGHT, MARGIN = 720, 260, 48
COLOURS = {
    "bar": "#2f5d8a",
    "alert": "#b03a2e",
    "explained": "#7f8c8d",
    "unexplained": "#b03a2e",
    "missing": "#d5d8dc",
}
TIMELINE_LANES = 12
# The lane labels' gutter, left of the plot: labels are cut to fit it, never drawn over the dots.
LABEL_CHARS, CHAR_WIDTH = 22, 6


def _frame(title: str, body: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
        f'<text x="{MARGIN}" y="18" font-size="14" font-weight="bold">{escape(title)}</text>'
        f"{body}</svg>"
    )


def bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    colour: str = "bar",
    missing: str = "no data",
) -> str:
    """Vertical bars with their values; an empty chart says so. A value of None (no data) is a
    grey, hatched full-height column titled `missing`, so it cannot be read as zero."""
    if not values:
        return _frame(title, f'<text x="{MARGIN}" y="{HEIGHT // 2}">nothing in this period</text>')
    top = max(*[v for v in values if v is not None], 1)
    plot_w, plot_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN
    step = plot_w / len(values)
    bars = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = MARGIN + i * step
        if value is None:
            bars.append(_missing_bar(x, step, plot_h, f"{label}: {missing}"))
        else:
            bars.append(_bar(x, step, plot_h * value / top, plot_h, label, value, colour))
        if len(values) <= 16 or i % max(1, len(values) // 12) == 0:
            bars.append(
                f'<text x="{x + step / 2:.1f}" y="{HEIGHT - MARGIN + 14}" font-size="10" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    axis = (
        f'<line x1="{MARGIN}" y1="{HEIGHT - MARGIN}" x2="{WIDTH - MARGIN}" '
        f'y2="{HEIGHT - MARGIN}" stroke="#333"/>'
    )
    if None in values:
        axis += (
            f'<text x="{WIDTH - MARGIN}" y="18" font-size="10" text-anchor="end">'
            f"grey hatched: {escape(missing)}</text>"
        )
    return _frame(title, _HATCH + axis + "".join(bars))


_HATCH = (
    '<defs><pattern id="no-data" width="6" height="6" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)"><rect width="6" height="6" fill="'
    + COLOURS["missing"]
    + '"/><line x1="0" y1="0" x2="0" y2="6" stroke="#fff" stroke-width="2"/></pattern></defs>'
)


def _bar(
    x: float, step: float, h: float, plot_h: float, label: str, value: float, colour: str
) -> str:
    y = MARGIN + plot_h - h
    return (
        f'<rect class="bar" x="{x + step * 0.1:.1f}" y="{y:.1f}" width="{step * 0.8:.1f}" '
        f'height="{h:.1f}" fill="{COLOURS[colour]}"><title>{escape(label)}: {value:g}</title>'
        f"</rect>"
        f'<text x="{x + step / 2:.1f}" y="{y - 3:.1f}" font-size="10" text-anchor="middle">'
        f"{value:g}</text>"
    )


def _missing_bar(x: float, step: float, plot_h: float, title: str) -> str:
    return (
        f'<rect class="no-data" x="{x + step * 0.1:.1f}" y="{MARGIN}" width="{step * 0.8:.1f}" '
        f'height="{plot_h:.1f}" fill="url(#no-data)"><title>{escape(title)}</title></rect>'
    )


def timeline(
    title: str, times: Sequence[datetime], explained: Sequence[bool], lanes: Sequence[str]
) -> str:
    """One dot per access along time, one lane per subject (the first 12 to appear; the chart
    says how many more there are); red when nothing explains it. Lane labels sit in a gutter
    left of the plot, cut to fit it, the full name in their tooltip."""
    if not times:
        return _frame(title, f'<text x="{MARGIN}" y="{HEIGHT // 2}">no accesses</text>')
    every = list(dict.fromkeys(lanes))
    names = every[:TIMELINE_LANES]
    start, end = min(times), max(times)
    span = max((end - start).total_seconds(), 1.0)
    plot_x = MARGIN + LABEL_CHARS * CHAR_WIDTH + 8
    plot_w = WIDTH - MARGIN - plot_x
    lane_h = (HEIGHT - 2 * MARGIN) / max(len(names), 1)
    lane_of = {name: i for i, name in enumerate(names)}
    dots = []
    for when, ok, lane in zip(times, explained, lanes, strict=True):
        if lane not in lane_of:
            continue
        x = plot_x + plot_w * (when - start).total_seconds() / span
        y = MARGIN + lane_h * (lane_of[lane] + 0.5)
        colour = COLOURS["explained" if ok else "unexplained"]
        dots.append(
            f'<circle class="{"explained" if ok else "unexplained"}" cx="{x:.1f}" cy="{y:.1f}" '
            f'r="4" fill="{colour}"><title>{escape(lane)} {when:%Y-%m-%d %H:%M}'
            f"{'' if ok else ' (unexplained)'}</title></circle>"
        )
    labels = "".join(
        f'<text class="lane" x="{plot_x - 8}" y="{MARGIN + lane_h * (i + 0.5) + 4:.1f}" '
        f'font-size="10" text-anchor="end"><title>{escape(name)}</title>'
        f"{escape(_fit(name))}</text>"
        for i, name in enumerate(names)
    )
    hidden = len(every) - len(names)
    more = (
        f'<text class="more" x="{MARGIN}" y="{HEIGHT - 12}" font-size="10">'
        f"and {hidden} more not shown</text>"
        if hidden
        else ""
    )
    axis = (
        f'<text x="{plot_x}" y="{HEIGHT - 28}" font-size="10">{start:%Y-%m-%d}</text>'
        f'<text x="{WIDTH - MARGIN}" y="{HEIGHT - 28}" font-size="10" text-anchor="end">'
        f"{end:%Y-%m-%d}</text>"
    )
    return _frame(title, labels + axis + more + "".join(dots))


def _fit(label: str) -> str:
    """A lane label cut to the gutter's width (a monospace estimate, generous for proportional
    fonts)."""
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "\u2026"
