"""Inline SVG bar charts (no scripts, no external fonts or assets)."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

WIDTH = 900
ROW = 30
BAR = 20
MAX_LABEL_CHARS = 34
MAX_LABEL_PX = 300
COLORS = {"process": "#3b82c4", "success": "#2f9e44", "failure": "#c92a2a"}
FONT = 'font-family="DejaVu Sans, Segoe UI, Arial, sans-serif" font-size="13"'


@dataclass
class Bar:
    """One horizontal bar: a label, a value, its caption and (optionally) a second, lighter value."""

    label: str
    value: float
    caption: str
    semantics: str = "process"
    back_value: float | None = None  # drawn behind the bar, lighter (e.g. the 90th percentile)


def text_width(text: str) -> float:
    """Estimated width in px of text in a 13px sans-serif font (Cyrillic and capitals run wider)."""
    return sum(7.0 if ch.isascii() and not ch.isupper() else 8.6 for ch in text)


def short(label: str, limit: int = MAX_LABEL_CHARS) -> str:
    """A label cut to `limit` characters with an ellipsis (the full text goes into a tooltip)."""
    label = " ".join(label.split())
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"


def _fit(label: str) -> str:
    """Shorten a label until its estimated width fits the label column."""
    text = short(label)
    limit = len(text)
    while text_width(text) > MAX_LABEL_PX and limit > 4:
        limit -= 1
        text = short(label, limit)
    return text


def bar_chart(bars: list[Bar], *, title: str, empty_text: str = "No data") -> str:
    """A horizontal bar chart as an <svg> element; long labels are shortened, full text in <title>."""
    if not bars:
        return (
            f'<svg role="img" viewBox="0 0 {WIDTH} 40" width="100%" aria-label="{escape(title)}">'
            f'<text x="10" y="25" {FONT} fill="#52606d">{escape(empty_text)}</text></svg>'
        )
    labels = [_fit(b.label) for b in bars]
    label_w = int(max(text_width(lbl) for lbl in labels)) + 16
    caption_w = int(max(text_width(b.caption) for b in bars)) + 12
    plot_w = max(120, WIDTH - label_w - caption_w)
    top = max((max(b.value, b.back_value or 0.0) for b in bars), default=0.0) or 1.0
    height = ROW * len(bars) + 10
    parts = [
        f'<svg role="img" viewBox="0 0 {WIDTH} {height}" width="100%" aria-label="{escape(title)}" {FONT}>',
        f"<title>{escape(title)}</title>",
    ]
    for i, (bar, label) in enumerate(zip(bars, labels, strict=True)):
        y = 5 + i * ROW
        color = COLORS.get(bar.semantics, COLORS["process"])
        parts.append(f"<g><title>{escape(bar.label)}: {escape(bar.caption)}</title>")
        parts.append(
            f'<text x="{label_w - 8}" y="{y + BAR - 5}" text-anchor="end" fill="#1f2933">'
            f"{escape(label)}</text>"
        )
        parts.append(f'<rect x="{label_w}" y="{y}" width="{plot_w}" height="{BAR}" fill="#f1f3f5"/>')
        if bar.back_value:
            back = max(2.0, plot_w * bar.back_value / top)
            parts.append(
                f'<rect x="{label_w}" y="{y}" width="{back:.1f}" height="{BAR}" '
                f'fill="{color}" opacity="0.35"/>'
            )
        width = plot_w * bar.value / top
        if bar.value > 0:
            width = max(2.0, width)
        parts.append(f'<rect x="{label_w}" y="{y}" width="{width:.1f}" height="{BAR}" fill="{color}"/>')
        parts.append(
            f'<text x="{label_w + plot_w + 6}" y="{y + BAR - 5}" fill="#1f2933">'
            f"{escape(bar.caption)}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)

