"""Inline-SVG histogram of one feature's activations, positive rows against negative rows.

Counts are turned into fractions of each class, so a rare positive class still shows
its shape next to a large negative class. Rows where the feature is absent
(activation 0) are drawn in a panel of their own with its own scale: they usually
outnumber every other bin and would flatten the rest of the histogram.

:func:`counts_histogram_svg` draws a single series of bin counts instead (the explain
page's histogram of per-context maximum activation).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
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
    """One bar rising from ``base``; its height is ``fraction / scale`` of ``height``; an empty bin draws nothing.

    Empty bins were zero-height rectangles with a tooltip no pointer can reach: most of a
    report's bytes for sparse features. The axis still spans every bin.
    """
    if fraction <= 0:
        return ""
    h = 0.0 if scale <= 0 else height * fraction / scale
    if fraction > 0:
        h = max(h, 1.0)  # a non-empty bin stays visible
    return (
        f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{max(width, 0.5):.1f}" height="{h:.1f}" '
        f'fill="{colour}"><title>{html.escape(tip)}</title></rect>'
    )


def _frac(count: float, total: float) -> float:
    """``count`` as a fraction of ``total`` (0 when the total is 0)."""
    return count / total if total > 0 else 0.0


@dataclass(frozen=True)
class _Counts:
    """A report histogram block cleaned up: bins, counts and fractions of each class, rows at activation 0."""

    edges: list[Any]
    pos_counts: list[float]
    neg_counts: list[float]
    zero_pos: float
    zero_neg: float
    n_pos: float
    n_neg: float
    pos_f: list[float]
    neg_f: list[float]
    zero_f: tuple[float, float]

    @property
    def n_bins(self) -> int:
        """Number of non-zero bins drawn."""
        return len(self.pos_counts)

    @property
    def zero_scale(self) -> float:
        """The largest fraction in the zero panel (its full height)."""
        return max(self.zero_f)

    @property
    def main_scale(self) -> float:
        """The largest fraction in the main panel (its full height)."""
        return max(self.pos_f + self.neg_f, default=0.0)


def _counts(histogram: dict) -> _Counts | None:
    """The counts of ``histogram`` as fractions of each class, or None when it has no rows."""
    edges = [e for e in histogram.get("edges") or []]
    pos_counts = [_count(c) for c in histogram.get("positive") or []]
    neg_counts = [_count(c) for c in histogram.get("negative") or []]
    n_bins = min(len(pos_counts), len(neg_counts), max(len(edges) - 1, 0))
    pos_counts, neg_counts = pos_counts[:n_bins], neg_counts[:n_bins]
    zero_pos, zero_neg = _count(histogram.get("zeros_positive")), _count(histogram.get("zeros_negative"))
    n_pos, n_neg = sum(pos_counts) + zero_pos, sum(neg_counts) + zero_neg
    if n_pos + n_neg <= 0:
        return None
    return _Counts(
        edges=edges, pos_counts=pos_counts, neg_counts=neg_counts, zero_pos=zero_pos, zero_neg=zero_neg,
        n_pos=n_pos, n_neg=n_neg, pos_f=[_frac(c, n_pos) for c in pos_counts],
        neg_f=[_frac(c, n_neg) for c in neg_counts], zero_f=(_frac(zero_pos, n_pos), _frac(zero_neg, n_neg)),
    )


@dataclass(frozen=True)
class _Frame:
    """Where the two panels sit in a drawing of ``width`` × ``height`` pixels."""

    width: int
    height: int

    @property
    def plot_h(self) -> int:
        """Height of the plotting area."""
        return self.height - _TOP - _BOTTOM

    @property
    def base(self) -> int:
        """y of the x axis."""
        return _TOP + self.plot_h

    @property
    def zero_x(self) -> int:
        """Left edge of the zero panel."""
        return _LEFT

    @property
    def main_x(self) -> int:
        """Left edge of the main panel."""
        return _LEFT + _ZERO_W + _GAP

    @property
    def main_w(self) -> int:
        """Width of the main panel."""
        return self.width - self.main_x - _RIGHT


def _legend(counts: _Counts) -> list[str]:
    """The legend, top left: one swatch and row count per class."""
    parts = []
    classes = (("positive", POSITIVE_COLOUR, counts.n_pos), ("negative", NEGATIVE_COLOUR, counts.n_neg))
    for i, (name, colour, n) in enumerate(classes):
        x = _LEFT + i * 150
        parts.append(f'<rect x="{x}" y="8" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + 14}" y="17" fill="#343a40">{name} rows (n={n:.0f})</text>')
    return parts


def _axes(frame: _Frame, counts: _Counts) -> list[str]:
    """Both panels' axes and frames, the y-axis title, and each panel's top and bottom y labels."""
    base, plot_h = frame.base, frame.plot_h
    parts = []
    for x0, w in ((frame.zero_x, _ZERO_W), (frame.main_x, frame.main_w)):
        parts.append(f'<line x1="{x0}" y1="{base}" x2="{x0 + w}" y2="{base}" stroke="#868e96"/>')
        parts.append(f'<line x1="{x0}" y1="{_TOP}" x2="{x0}" y2="{base}" stroke="#ced4da"/>')
    parts.append(
        f'<text x="12" y="{_TOP + plot_h / 2:.1f}" fill="#495057" text-anchor="middle" '
        f'transform="rotate(-90 12 {_TOP + plot_h / 2:.1f})">fraction of class</text>'
    )
    for x0, scale in ((frame.zero_x, counts.zero_scale), (frame.main_x, counts.main_scale)):
        parts.append(f'<text x="{x0 - 3}" y="{_TOP + 8}" fill="#495057" text-anchor="end">{_pct(scale)}</text>')
        parts.append(f'<text x="{x0 - 3}" y="{base}" fill="#495057" text-anchor="end">0</text>')
    return parts


def _zero_panel(frame: _Frame, counts: _Counts) -> list[str]:
    """The zero panel: one bar per class for the rows where the feature is absent, on its own scale."""
    zero_x, base, plot_h, zero_f, scale = frame.zero_x, frame.base, frame.plot_h, counts.zero_f, counts.zero_scale
    bar_w = (_ZERO_W - 8) / 2
    return [
        _bar(zero_x + 3, bar_w, zero_f[0], scale, base, plot_h, POSITIVE_COLOUR,
             f"activation 0: {_rows(counts.zero_pos, 'positive')} ({_pct(zero_f[0])})"),
        _bar(zero_x + 5 + bar_w, bar_w, zero_f[1], scale, base, plot_h, NEGATIVE_COLOUR,
             f"activation 0: {_rows(counts.zero_neg, 'negative')} ({_pct(zero_f[1])})"),
        f'<text x="{zero_x + _ZERO_W / 2}" y="{base + 13}" fill="#495057" text-anchor="middle">= 0</text>',
    ]


def _main_panel(frame: _Frame, counts: _Counts) -> list[str]:
    """The main panel: side-by-side bars per bin of non-zero activations and the end labels of the x axis."""
    main_x, main_w, base, plot_h = frame.main_x, frame.main_w, frame.base, frame.plot_h
    n_bins, scale, edges = counts.n_bins, counts.main_scale, counts.edges
    if not (n_bins and scale > 0):
        return [
            f'<text x="{main_x + main_w / 2}" y="{_TOP + plot_h / 2}" fill="#868e96" '
            'text-anchor="middle">no non-zero activations</text>'
        ]
    parts = []
    slot = main_w / n_bins
    half = max(slot / 2 - (1 if slot >= 6 else 0), 0.5)
    for i in range(n_bins):
        x = main_x + i * slot
        span = f"[{_label(edges[i])}, {_label(edges[i + 1])})"
        parts.append(_bar(x, half, counts.pos_f[i], scale, base, plot_h, POSITIVE_COLOUR,
                          f"{span}: {_rows(counts.pos_counts[i], 'positive')} ({_pct(counts.pos_f[i])})"))
        parts.append(_bar(x + slot / 2, half, counts.neg_f[i], scale, base, plot_h, NEGATIVE_COLOUR,
                          f"{span}: {_rows(counts.neg_counts[i], 'negative')} ({_pct(counts.neg_f[i])})"))
    parts.append(f'<text x="{main_x}" y="{base + 13}" fill="#495057">{_label(edges[0])}</text>')
    parts.append(
        f'<text x="{main_x + main_w}" y="{base + 13}" fill="#495057" text-anchor="end">'
        f'{_label(edges[n_bins])}</text>'
    )
    return parts


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
    counts = _counts(histogram)
    if counts is None:
        return None
    frame = _Frame(width, height)
    return "".join([
        f'<svg class="histogram" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{html.escape(title or "activation histogram")}" '
        'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="10">',
        *_legend(counts),
        *_axes(frame, counts),
        *_zero_panel(frame, counts),
        *_main_panel(frame, counts),
        f'<text x="{frame.main_x + frame.main_w / 2}" y="{frame.base + 27}" fill="#495057" '
        'text-anchor="middle">activation</text>',
        "</svg>",
    ])


def counts_histogram_svg(edges: Any, counts: Any, *, width: int = 440, height: int = 170, title: str = "",
                         x_label: str = "activation", colour: str = POSITIVE_COLOUR) -> str | None:
    """An inline ``<svg>`` of one series of bin counts (no classes), or None when every bin is empty.

    Args:
        edges: ``n + 1`` bin edges (a sequence or a numpy array).
        counts: ``n`` counts, one per bin.
        width: width of the drawing in pixels.
        height: height of the drawing in pixels.
        title: accessible name of the drawing (escaped here).
        x_label: title of the x axis (escaped here).
        colour: fill of the bars.

    Returns:
        The ``<svg>`` element as a string (no XML declaration, no external references).
    """
    edges = edges.tolist() if hasattr(edges, "tolist") else list(edges)  # numpy integers are not ``int``
    values = [_count(c) for c in (counts.tolist() if hasattr(counts, "tolist") else counts)]
    values = values[:max(len(edges) - 1, 0)]
    top = max(values, default=0.0)
    if top <= 0:
        return None
    left, plot_w, plot_h = 44, width - 44 - _RIGHT, height - 14 - _BOTTOM
    base, slot = 14 + plot_h, plot_w / len(values)
    parts = [
        f'<svg class="histogram" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{html.escape(title or "histogram")}" '
        'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="10">',
        f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" stroke="#868e96"/>',
        f'<line x1="{left}" y1="14" x2="{left}" y2="{base}" stroke="#ced4da"/>',
        f'<text x="{left - 3}" y="22" fill="#495057" text-anchor="end">{top:.0f}</text>',
        f'<text x="{left - 3}" y="{base}" fill="#495057" text-anchor="end">0</text>',
        f'<text x="10" y="{14 + plot_h / 2:.1f}" fill="#495057" text-anchor="middle" '
        f'transform="rotate(-90 10 {14 + plot_h / 2:.1f})">count</text>',
    ]
    for i, value in enumerate(values):
        tip = f"[{_label(edges[i])}, {_label(edges[i + 1])}): {value:.0f}"
        parts.append(_bar(left + i * slot + 0.5, slot - 1 if slot >= 4 else slot, value, top, base, plot_h,
                          colour, tip))
    parts += [
        f'<text x="{left}" y="{base + 13}" fill="#495057">{_label(edges[0])}</text>',
        f'<text x="{left + plot_w}" y="{base + 13}" fill="#495057" text-anchor="end">'
        f"{_label(edges[len(values)])}</text>",
        f'<text x="{left + plot_w / 2}" y="{base + 27}" fill="#495057" text-anchor="middle">'
        f"{html.escape(x_label)}</text>",
        "</svg>",
    ]
    return "".join(parts)
