"""Charts as inline SVG, drawn on the server: no chart library, no script, nothing to download.

Each chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that says what a
screen reader needs (what is shown, the total and the peak); each bar or point carries its
own ``<title>``, which browsers show on hover. Colours come from CSS classes (``app.css``),
so the charts follow the page's theme; sizes are in a fixed ``viewBox`` scaled to the width.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

W, H = 640, 180
PAD_L, PAD_R, PAD_T, PAD_B = 52, 8, 10, 22
_ids = itertools.count()


def _frame(title: str, desc: str, body: list[str], labels: Sequence[str], top: float,
           fmt: Callable[[float], str], zone: str) -> Markup:
    n = next(_ids)
    plot_w, plot_h = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    parts = [f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-labelledby="ct{n} cd{n}" '
             f'preserveAspectRatio="none">',
             f'<title id="ct{n}">{escape(title)}</title><desc id="cd{n}">{escape(desc)}</desc>']
    for frac in (0.0, 0.5, 1.0):   # grid lines with their values
        y = PAD_T + plot_h * (1 - frac)
        parts.append(f'<line class="grid" x1="{PAD_L}" x2="{W - PAD_R}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{escape(fmt(top * frac))}</text>')
    count = len(labels)
    for i in _tick_positions(count):
        x = PAD_L + plot_w * (i + 0.5) / max(count, 1)
        parts.append(f'<text class="axis" x="{x:.1f}" y="{H - 6}" text-anchor="middle">{escape(labels[i])}</text>')
    if zone:   # the time axis's zone, in the corner under the value axis
        parts.append(f'<text class="axis zone" x="{PAD_L - 6}" y="{H - 6}" text-anchor="end">{escape(zone)}</text>')
    parts.extend(body)
    parts.append("</svg>")
    return Markup("".join(parts))


def _tick_positions(count: int) -> list[int]:
    if count <= 1:
        return list(range(count))
    every = max(1, count // 6)
    return list(range(0, count, every))


def _nice(top: float) -> float:
    """The round number just above ``top`` (1, 2, 2.5 or 5 times a power of ten)."""
    if top <= 0:
        return 1.0
    magnitude: float = 10 ** math.floor(math.log10(top))
    for mult in (1, 2, 2.5, 5, 10):
        if top <= mult * magnitude:
            return mult * magnitude
    return top


def bars(title: str, labels: Sequence[str], values: Sequence[float], *, fmt: Callable[[float], str],
         overlay: Sequence[float] | None = None, overlay_name: str = "", unit: str = "", zone: str = "") -> Markup:
    """Bars per step; ``overlay`` (e.g. errors) is drawn over the bottom of each bar. ``zone``
    names the time zone of time ``labels`` (on the axis and in every tooltip)."""
    named_at = _zoned(labels, zone)
    top = _nice(max(values, default=0.0))
    plot_w, plot_h = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    slot = plot_w / max(len(values), 1)
    body = []
    for i, value in enumerate(values):
        x = PAD_L + slot * i + slot * 0.15
        width = max(slot * 0.7, 1.0)
        h = plot_h * value / top
        tip = f"{named_at[i]}: {fmt(value)}{unit}"
        if overlay is not None and overlay[i]:
            tip += f" ({fmt(overlay[i])} {overlay_name})"
        body.append(f'<rect class="bar" x="{x:.1f}" y="{PAD_T + plot_h - h:.1f}" width="{width:.1f}" '
                    f'height="{h:.1f}"><title>{escape(tip)}</title></rect>')
        if overlay is not None and overlay[i]:
            oh = plot_h * overlay[i] / top
            body.append(f'<rect class="bar-alt" x="{x:.1f}" y="{PAD_T + plot_h - oh:.1f}" width="{width:.1f}" '
                        f'height="{oh:.1f}"><title>{escape(tip)}</title></rect>')
    total = sum(values)
    peak = max(range(len(values)), key=lambda i: values[i]) if values else None
    desc = f"Total {fmt(total)}{unit}"
    if peak is not None and values[peak]:
        desc += f"; peak {fmt(values[peak])}{unit} at {named_at[peak]}"
    if overlay is not None:
        desc += f"; {overlay_name} {fmt(sum(overlay))}"
    return _frame(title, desc + ".", body, labels, top, fmt, zone)


def _zoned(labels: Sequence[str], zone: str) -> list[str]:
    """Time labels as tooltips and descriptions say them (the axis's own stay short: the
    zone is written once there, in the corner)."""
    return [f"{label} {zone}" if zone else label for label in labels]


def lines(title: str, labels: Sequence[str], named: Sequence[tuple[str, str, Sequence[float | None]]], *,
          fmt: Callable[[float], str], zone: str = "") -> Markup:
    """One polyline per (name, css class, values); gaps where a value is None; ``zone`` as for
    :func:`bars`."""
    named_at = _zoned(labels, zone)
    known = [v for _, _, vs in named for v in vs if v is not None]
    top = _nice(max(known, default=0.0))
    plot_w, plot_h = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    count = max((len(vs) for _, _, vs in named), default=0)
    body = []
    for name, css, values in named:
        run: list[str] = []
        for i, value in enumerate([*values, None]):
            if value is None:
                if len(run) > 1:
                    body.append(f'<polyline class="{css}" points="{" ".join(run)}"/>')
                run = []
                continue
            x = PAD_L + plot_w * (i + 0.5) / max(count, 1)
            y = PAD_T + plot_h * (1 - value / top)
            run.append(f"{x:.1f},{y:.1f}")
            body.append(f'<circle class="{css}-dot" cx="{x:.1f}" cy="{y:.1f}" r="2.5">'
                        f'<title>{escape(f"{named_at[i]}: {name} {fmt(value)}")}</title></circle>')
    parts = []
    for name, _, values in named:
        present = [v for v in values if v is not None]
        if present:
            parts.append(f"{name} peaks at {fmt(max(present))}")
    desc = "; ".join(parts) or "No data in this period"
    return _frame(title, desc + ".", body, labels, top, fmt, zone)
