"""Charts drawn on the server as inline SVG: no JavaScript, nothing loaded from elsewhere.

Two shapes serve the usage dashboard: bars stacked by series (spend per day by model) and bars side
by side (requests and errors per day). Values are integers (1e-12 USD, or counts); the y axis gets
"nice" ticks (1, 2 or 5 × 10^k) computed in integers, so dollar ticks are exact. Every label is
escaped: model names come from the data.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# Colour-blind-safe palette (Okabe–Ito, then greys for the rest).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000", "#999999", "#666666")
WIDTH, HEIGHT = 900, 300
LEFT, RIGHT, TOP, BOTTOM = 110, 10, 10, 40  # room for the y labels and the x labels


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[int]  # one per x label
    color: str


def nice_step(largest: int, ticks: int = 5) -> int:
    """The smallest 1, 2 or 5 × 10^k (k ≥ 0) such that `ticks` steps reach `largest`."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor * ticks >= largest:
                return step * factor
        step *= 10


def _axes(largest: int, label: Callable[[int], str], x_labels: Sequence[str], y_title: str) -> tuple[list[str], int, float]:
    """The grid, the y ticks and the x labels; returns (parts, the y axis top value, the pixel width of a slot)."""
    step = nice_step(max(largest, 1))
    top = step * max(1, -(-max(largest, 1) // step))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = []
    for value in range(0, top + 1, step):
        y = TOP + plot_h - plot_h * value / top
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12">{escape(label(value))}</text>')
    slot = plot_w / max(len(x_labels), 1)
    every = max(1, -(-len(x_labels) // 15))  # at most 15 labels: 90 days would overlap
    for index, text in enumerate(x_labels):
        if index % every == 0:
            x = LEFT + slot * (index + 0.5)
            parts.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" font-size="12">{escape(text)}</text>')
    parts.append(f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + plot_h}" stroke="#333"/>')
    parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}" stroke="#333"/>')
    parts.append(
        f'<text x="14" y="{TOP + plot_h / 2:.1f}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 14 {TOP + plot_h / 2:.1f})">{escape(y_title)}</text>'
    )
    parts.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 4}" font-size="12" text-anchor="middle">day (UTC)</text>')
    return parts, top, slot


def _svg(title: str, parts: list[str]) -> SafeString:
    body = "".join(parts)
    return mark_safe(  # noqa: S308 (every text above went through escape())
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'aria-label="{escape(title)}" style="max-width:{WIDTH}px;font-family:sans-serif"><title>{escape(title)}</title>{body}</svg>'
    )


def stacked_bars(title: str, x_labels: Sequence[str], series: Sequence[Series], label: Callable[[int], str], y_title: str) -> SafeString:
    """One bar per x label, its series stacked bottom-up in the order given; each segment has a tooltip."""
    totals = [sum(s.values[i] for s in series) for i in range(len(x_labels))]
    parts, top, slot = _axes(max(totals, default=0), label, x_labels, y_title)
    plot_h = HEIGHT - TOP - BOTTOM
    bar_w = max(slot * 0.7, 1)
    for index, x_label in enumerate(x_labels):
        base = 0
        x = LEFT + slot * index + (slot - bar_w) / 2
        for s in series:
            value = s.values[index]
            if value <= 0:
                continue
            y0, y1 = TOP + plot_h - plot_h * base / top, TOP + plot_h - plot_h * (base + value) / top
            tip = f"{x_label} · {s.label}: {label(value)}"
            parts.append(
                f'<rect x="{x:.1f}" y="{y1:.1f}" width="{bar_w:.1f}" height="{max(y0 - y1, 0.5):.1f}" fill="{s.color}">'
                f"<title>{escape(tip)}</title></rect>"
            )
            base += value
    return _svg(title, parts)


def side_by_side_bars(
    title: str, x_labels: Sequence[str], series: Sequence[Series], label: Callable[[int], str], y_title: str
) -> SafeString:
    """For each x label, one thin bar per series next to each other."""
    largest = max((v for s in series for v in s.values), default=0)
    parts, top, slot = _axes(largest, label, x_labels, y_title)
    plot_h = HEIGHT - TOP - BOTTOM
    bar_w = max(slot * 0.8 / max(len(series), 1), 1)
    for index, x_label in enumerate(x_labels):
        for n, s in enumerate(series):
            value = s.values[index]
            if value <= 0:
                continue
            x = LEFT + slot * index + slot * 0.1 + bar_w * n
            height = max(plot_h * value / top, 0.5)
            tip = f"{x_label} · {s.label}: {label(value)}"
            parts.append(
                f'<rect x="{x:.1f}" y="{TOP + plot_h - height:.1f}" width="{bar_w:.1f}" height="{height:.1f}" fill="{s.color}">'
                f"<title>{escape(tip)}</title></rect>"
            )
    return _svg(title, parts)
