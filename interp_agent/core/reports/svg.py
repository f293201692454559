"""Inline-SVG histogram of one feature's activations, positive rows against negative rows.

Counts are turned into fractions of each class, so a rare positive class still shows
its shape next to a large negative class. Rows where the feature is absent
(activation 0) are drawn in a panel of their own with its own scale: they usually
outnumber every other bin and would flatten the rest of the histogram.
"""

from __future__ import annotations

import html
import math
from typing import Any

POSITIVE_COLOUR = "#0c8599"
NEGATIVE_COLOUR = "#adb5bd"

_LEFT, _RIGHT, _TOP, _BOTTOM = 50, 10, 30, 34
_ZERO_W, _GAP = 40, 38


def _count(value: Any) -> float:
    """A count as a non-negative float (anything else counts as 0)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return 0.0
    return max(float(value), 0.0)


def _label(value: Any) -> str:
    """An axis value to 3 significant digits."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "?"
    return f"{value:.3g}"


def _rows(count: float, kind: str) -> str:
    """``3 positive rows`` / ``1 negative row``."""
    return f"{count:.0f} {kind} row{'' if count == 1 else 's'}"


def _pct(fraction: float) -> str:
    """A fraction as a short percentage."""
    return f"{100 * fraction:.3g}%"


def _bar(x: float, width: float, fraction: float, scale: float, base: float, height: float, colour: str,
         tip: str) -> str:
    """One bar rising from ``base``; its height is ``fraction / scale`` of ``height``."""
    h = 0.0 if scale <= 0 else height * fraction / scale
    if fraction > 0:
        h = max(h, 1.0)  # a non-empty bin stays visible
    return (
        f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{max(width, 0.5):.1f}" height="{h:.1f}" '
        f'fill="{colour}"><title>{html.escape(tip)}</title></rect>'
    )


def histogram_svg(histogram: dict | None, *, width: int = 440, height: int = 190, title: str = "") -> str | None:
    """An inline ``<svg>`` drawing a report ``histogram`` block, or None when there is nothing to draw.

    Args:
        histogram: ``{"edges", "positive", "negative", "zeros_positive", "zeros_negative"}``
            as in ``docs/report-format.md``; None (features backend) gives None.
        width: width of the drawing in pixels.
        height: height of the drawing in pixels.
        title: accessible name of the drawing (escaped here).

    Returns:
        The ``<svg>`` element as a string (no XML declaration, no external references).
    """
    if not isinstance(histogram, dict):
        return None
    edges = [e for e in histogram.get("edges") or []]
    pos_counts = [_count(c) for c in histogram.get("positive") or []]
    neg_counts = [_count(c) for c in histogram.get("negative") or []]
    n_bins = min(len(pos_counts), len(neg_counts), max(len(edges) - 1, 0))
    pos_counts, neg_counts = pos_counts[:n_bins], neg_counts[:n_bins]
    zero_pos, zero_neg = _count(histogram.get("zeros_positive")), _count(histogram.get("zeros_negative"))
    n_pos, n_neg = sum(pos_counts) + zero_pos, sum(neg_counts) + zero_neg
    if n_pos + n_neg <= 0:
        return None

    def frac(count: float, total: float) -> float:
        return count / total if total > 0 else 0.0

    pos_f = [frac(c, n_pos) for c in pos_counts]
    neg_f = [frac(c, n_neg) for c in neg_counts]
    zero_f = (frac(zero_pos, n_pos), frac(zero_neg, n_neg))
    plot_h = height - _TOP - _BOTTOM
    base = _TOP + plot_h
    zero_x = _LEFT
    main_x = _LEFT + _ZERO_W + _GAP
    main_w = width - main_x - _RIGHT
    zero_scale = max(zero_f)
    main_scale = max(pos_f + neg_f, default=0.0)

    parts = [
        f'<svg class="histogram" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{html.escape(title or "activation histogram")}" '
        'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="10">',
    ]
    # Legend, top left.
    for i, (name, colour, n) in enumerate((("positive", POSITIVE_COLOUR, n_pos), ("negative", NEGATIVE_COLOUR, n_neg))):
        x = _LEFT + i * 150
        parts.append(f'<rect x="{x}" y="8" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + 14}" y="17" fill="#343a40">{name} rows (n={n:.0f})</text>')
    # Axes and frames.
    for x0, w in ((zero_x, _ZERO_W), (main_x, main_w)):
        parts.append(f'<line x1="{x0}" y1="{base}" x2="{x0 + w}" y2="{base}" stroke="#868e96"/>')
        parts.append(f'<line x1="{x0}" y1="{_TOP}" x2="{x0}" y2="{base}" stroke="#ced4da"/>')
    parts.append(
        f'<text x="12" y="{_TOP + plot_h / 2:.1f}" fill="#495057" text-anchor="middle" '
        f'transform="rotate(-90 12 {_TOP + plot_h / 2:.1f})">fraction of class</text>'
    )
    for x0, scale in ((zero_x, zero_scale), (main_x, main_scale)):
        parts.append(f'<text x="{x0 - 3}" y="{_TOP + 8}" fill="#495057" text-anchor="end">{_pct(scale)}</text>')
        parts.append(f'<text x="{x0 - 3}" y="{base}" fill="#495057" text-anchor="end">0</text>')
    # Zero panel: the rows where the feature is absent.
    bar_w = (_ZERO_W - 8) / 2
    parts.append(_bar(zero_x + 3, bar_w, zero_f[0], zero_scale, base, plot_h, POSITIVE_COLOUR,
                      f"activation 0: {_rows(zero_pos, 'positive')} ({_pct(zero_f[0])})"))
    parts.append(_bar(zero_x + 5 + bar_w, bar_w, zero_f[1], zero_scale, base, plot_h, NEGATIVE_COLOUR,
                      f"activation 0: {_rows(zero_neg, 'negative')} ({_pct(zero_f[1])})"))
    parts.append(f'<text x="{zero_x + _ZERO_W / 2}" y="{base + 13}" fill="#495057" text-anchor="middle">= 0</text>')
    # Main panel: non-zero activations, side-by-side bars per bin.
    if n_bins and main_scale > 0:
        slot = main_w / n_bins
        half = max(slot / 2 - (1 if slot >= 6 else 0), 0.5)
        for i in range(n_bins):
            x = main_x + i * slot
            span = f"[{_label(edges[i])}, {_label(edges[i + 1])})"
            parts.append(_bar(x, half, pos_f[i], main_scale, base, plot_h, POSITIVE_COLOUR,
                              f"{span}: {_rows(pos_counts[i], 'positive')} ({_pct(pos_f[i])})"))
            parts.append(_bar(x + slot / 2, half, neg_f[i], main_scale, base, plot_h, NEGATIVE_COLOUR,
                              f"{span}: {_rows(neg_counts[i], 'negative')} ({_pct(neg_f[i])})"))
        parts.append(f'<text x="{main_x}" y="{base + 13}" fill="#495057">{_label(edges[0])}</text>')
        parts.append(
            f'<text x="{main_x + main_w}" y="{base + 13}" fill="#495057" text-anchor="end">'
            f'{_label(edges[n_bins])}</text>'
        )
    else:
        parts.append(
            f'<text x="{main_x + main_w / 2}" y="{_TOP + plot_h / 2}" fill="#868e96" '
            'text-anchor="middle">no non-zero activations</text>'
        )
    parts.append(
        f'<text x="{main_x + main_w / 2}" y="{base + 27}" fill="#495057" text-anchor="middle">activation</text>'
    )
    parts.append("</svg>")
    return "".join(parts)
