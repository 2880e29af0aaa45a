"""The report's figures, drawn with matplotlib's object API (no pyplot state, no display).

- :func:`coverage_figure`: coverage per category and annotator (Figures 3-5), a dot plot;
- :func:`named_by_figure`: fraction of activations named by exactly n annotators (Figure 6),
  stacked bars;
- :func:`distrust_figure`: the share of each category's decisions that are distrusted;
- :func:`matching_figure`: the D = 1 and D = 2 matchings of one pair of annotators (Figure 7).

Categories run down the side, one row each with its (shortened) name, so labels never overlap
and a figure grows with the number of categories; :func:`pages` cuts long lists into pages of
:data:`PAGE` categories. Figures are :data:`WIDTH` inches wide at :data:`DPI`, the width of the
report's column, so they are shown unscaled in a 1400-pixel browser. Each function returns a
:class:`matplotlib.figure.Figure`; :func:`png_bytes` renders one.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.measures.coverage import ANY_ANNOTATOR
from analysis.measures.labels import CategoryNamings
from analysis.measures.matching import intersection_graph

__all__ = [
    "DPI",
    "LABEL",
    "PAGE",
    "WIDTH",
    "coverage_figure",
    "distrust_figure",
    "matching_figure",
    "named_by_figure",
    "pages",
    "png_bytes",
    "short_labels",
]

PAGE = 40
"""Categories per figure; longer lists are drawn on several pages."""
WIDTH = 11.0
"""Figure width in inches; at :data:`DPI` this is the report's 1100-pixel column."""
DPI = 100
LABEL = 48
"""Category labels longer than this are shortened (the tables and CSV files hold the names)."""
_ROW = 0.3  # inches per category row
_FEW_ANNOTATORS = 8  # up to this many, each annotator gets its own colour and marker
_MARKERS = "osD^vP*Xh<>p"


def png_bytes(figure: Figure, *, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes, at most :data:`WIDTH` inches wide at ``dpi``.

    The tight bounding box keeps every label but grows past the figure's width when long
    category names stick out on the left; the figure is then narrowed by that much and drawn
    again, so the plot shrinks and the text keeps its size (shown unscaled in the report).
    """
    limit = round(WIDTH * dpi)
    png = _render(figure, dpi)
    for _ in range(4):  # the legend and ticks move as the plot narrows: a few passes
        width = int.from_bytes(png[16:20], "big")  # the PNG header's width
        if width <= limit:
            break
        figure.set_figwidth(figure.get_figwidth() - (width - limit + 2) / dpi)
        png = _render(figure, dpi)
    return png


def _render(figure: Figure, dpi: int) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def pages(categories: Sequence[str], per_page: int = PAGE) -> list[list[str]]:
    """Sorted distinct categories cut into pages of at most ``per_page``."""
    if per_page < 1:
        raise ValueError(f"per_page must be >= 1, got {per_page}")
    ordered = sorted({str(c) for c in categories})
    return [ordered[i : i + per_page] for i in range(0, len(ordered), per_page)]


def short_labels(categories: Sequence[str], limit: int = LABEL) -> dict[str, str]:
    """Category -> a label of at most ``limit`` characters, distinct for distinct categories."""
    labels = {}
    for c in categories:
        c = str(c)
        labels[c] = c if len(c) <= limit else c[: limit - 1] + "\u2026"
    if len(set(labels.values())) < len(labels):  # shortening made two alike: number them
        labels = {
            c: f"{k + 1}: {label}" if len(c) > limit else label
            for k, (c, label) in enumerate(labels.items())
        }
    return labels


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab20" if n > 10 else "tab10"]
    return [cmap(k % cmap.N) for k in range(n)]


def _rows_figure(rows: int, extra: float = 1.4) -> tuple[Figure, object]:
    figure = Figure(figsize=(WIDTH, max(2.2, _ROW * rows + extra)))
    ax = figure.subplots()
    ax.tick_params(axis="y", labelsize=9)
    ax.invert_yaxis()  # first category on top
    return figure, ax


def _legend_above(ax, title: str, *, ncol: int, legend_title: str | None = None) -> None:
    """The title, and under it the legend in one or more rows, above the plot."""
    legend = ax.legend(fontsize="small", title=legend_title, title_fontsize="small",
                       loc="lower left", bbox_to_anchor=(0.0, 1.01), frameon=False,
                       ncol=ncol)  # fmt: skip
    rows = -(-len(legend.get_texts()) // max(ncol, 1))
    ax.set_title(title, loc="left", pad=8 + 16 * rows + (14 if legend_title else 0))


def _page_title(title: str, page: int, of: int) -> str:
    return title if of <= 1 else f"{title} (page {page} of {of})"


def coverage_figure(
    coverage: pd.DataFrame,
    *,
    measure: str = "activation_coverage",
    categories: Sequence[str] | None = None,
    page: tuple[int, int] = (1, 1),
) -> Figure:
    """A dot plot of one coverage measure: a row per category, a dot per annotator, "any".

    With up to 8 annotators each has a colour and marker; with more, annotators are grey dots
    and a bar marks their mean. A black diamond is "any annotator".

    Parameters
    ----------
    coverage
        coverage.csv.
    measure
        activation_coverage (Figure 3), partial_coverage (Figure 4) or complete_coverage
        (Figure 5).
    categories
        The categories to draw, in order (a page of :func:`pages`); default: all, sorted.
    page
        (this page, pages), for the title.
    """
    titles = {
        "activation_coverage": "Fraction of significant activations named",
        "partial_coverage": "Partial explanation coverage",
        "complete_coverage": "Complete explanation coverage",
    }
    if measure not in titles:
        raise ValueError(f"measure must be one of {', '.join(titles)}, got {measure!r}")
    shown = list(categories) if categories is not None else sorted(coverage["category"].unique())
    table = coverage[coverage["category"].isin(shown)].pivot_table(
        index="category", columns="annotator", values=measure, dropna=False
    )
    table = table.reindex(shown)
    annotators = [a for a in table.columns if a != ANY_ANNOTATOR]
    figure, ax = _rows_figure(len(shown))
    y = np.arange(len(shown))
    if len(annotators) <= _FEW_ANNOTATORS:
        colors = _colors(len(annotators))
        spread = 0.5 / max(len(annotators), 1)
        for k, annotator in enumerate(annotators):
            offset = (k - (len(annotators) - 1) / 2) * spread
            ax.scatter(
                table[annotator], y + offset, s=26, color=colors[k],
                marker=_MARKERS[k % len(_MARKERS)], label=str(annotator), zorder=3,
            )  # fmt: skip
    else:
        values = table[annotators].to_numpy(dtype=float)
        for k in range(len(annotators)):
            ax.scatter(values[:, k], y, s=12, color="0.55", alpha=0.5, zorder=2,
                       label="each annotator" if k == 0 else None)  # fmt: skip
        ax.scatter(np.nanmean(values, axis=1), y, marker="|", s=260, color="tab:blue",
                   linewidths=2.5, label="mean over annotators", zorder=3)  # fmt: skip
    if annotators:
        low = table[annotators].min(axis=1)
        high = table[annotators].max(axis=1)
        ax.hlines(y, low, high, color="0.8", linewidth=1.0, zorder=1)
    if ANY_ANNOTATOR in table.columns:
        ax.scatter(table[ANY_ANNOTATOR], y, marker="D", s=34, facecolor="none",
                   edgecolor="black", linewidths=1.4, label="any annotator", zorder=4)  # fmt: skip
    labels = short_labels(shown)
    ax.set_yticks(y, [labels[c] for c in shown])
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel("fraction")
    ax.grid(axis="x", alpha=0.3)
    _legend_above(ax, _page_title(titles[measure], *page), ncol=min(len(annotators) + 1, 6))
    return figure


def named_by_figure(
    named_by: pd.DataFrame,
    *,
    categories: Sequence[str] | None = None,
    page: tuple[int, int] = (1, 1),
) -> Figure:
    """Stacked bars, a row per category: the fraction of activations named by exactly n."""
    shown = list(categories) if categories is not None else sorted(named_by["category"].unique())
    table = (
        named_by[named_by["category"].isin(shown)]
        .pivot_table(index="category", columns="n_annotators", values="fraction", fill_value=0.0)
        .reindex(shown)
        .fillna(0.0)
    )
    from matplotlib import colormaps

    series = list(table.columns)
    cmap = colormaps["RdYlGn"]
    top = max(max(series, default=1), 1)
    figure, ax = _rows_figure(len(shown))
    y = np.arange(len(shown))
    left = np.zeros(len(shown))
    for n in series:
        values = table[n].to_numpy(dtype=float)
        ax.barh(y, values, left=left, height=0.72, color=cmap(0.08 + 0.84 * n / top),
                edgecolor="white", linewidth=0.5, label=f"{n}")  # fmt: skip
        left += values
    labels = short_labels(shown)
    ax.set_yticks(y, [labels[c] for c in shown])
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction of the category's significant activations")
    _legend_above(
        ax, _page_title("Activations named by exactly n annotators", *page),
        ncol=min(len(series), 11), legend_title="n annotators",
    )  # fmt: skip
    return figure


def distrust_figure(distrust: pd.DataFrame, *, threshold: float, top: int = PAGE) -> Figure:
    """Horizontal bars of the ``top`` categories with the most distrusted decisions.

    Flagged categories (share >= ``threshold``) are red; the dashed line is the threshold.
    """
    ranked = distrust.dropna(subset=["distrusted_share"]).head(top)
    figure, ax = _rows_figure(max(len(ranked), 1))
    y = np.arange(len(ranked))
    shares = ranked["distrusted_share"].to_numpy(dtype=float)
    colors = ["tab:red" if f else "tab:blue" for f in ranked["flagged"]]
    ax.barh(y, shares, height=0.7, color=colors)
    for k, (share, count, total) in enumerate(
        zip(shares, ranked["distrusted"], ranked["decisions"], strict=True)
    ):
        inside = share > 0.8  # no room on the right: write it on the bar
        text = f"{100 * share:.0f}% ({count} of {total})"
        ax.text(share - 0.01 if inside else share + 0.01, k, text, va="center",
                ha="right" if inside else "left", fontsize=8,
                color="white" if inside else "black")  # fmt: skip
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
    ax.text(threshold, -0.9, f" threshold {threshold:g}", fontsize=8, va="bottom")
    labels = short_labels(ranked["category"])
    ax.set_yticks(y, [labels[c] for c in ranked["category"]])
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the category's test decisions that are distrusted")
    title = "Decisions to distrust, by category"
    if len(distrust) > len(ranked):
        title += f" (the {len(ranked)} highest of {len(distrust)})"
    ax.set_title(title, loc="left", pad=14)
    return figure


def matching_figure(
    category: CategoryNamings,
    annotator_a: str,
    annotator_b: str,
    matchings: pd.DataFrame,
) -> Figure:
    """The intersection graph of two annotators' namings with their D = 1 and D = 2 matchings.

    Concepts of ``annotator_a`` on the left, of ``annotator_b`` on the right; grey lines are
    shared activations (width ~ count), coloured lines the edges inside a matched set (one
    colour per set).
    """
    try:
        a = category.annotators.index(annotator_a)
        b = category.annotators.index(annotator_b)
    except ValueError:
        raise ValueError(
            f"category {category.category!r} has no namings from {annotator_a!r} or "
            f"{annotator_b!r}; its annotators are {', '.join(category.annotators)}"
        ) from None
    names_a, names_b = category.concepts[a], category.concepts[b]
    weights = intersection_graph(category.labels[a], category.labels[b], len(names_a), len(names_b))
    pair = matchings[
        (matchings["category"] == category.category)
        & (matchings["annotator_a"] == annotator_a)
        & (matchings["annotator_b"] == annotator_b)
    ]
    height = max(3.0, 0.38 * max(len(names_a), len(names_b), 1) + 1.2)
    figure = Figure(figsize=(11, height))
    axes = figure.subplots(1, 2)
    top = max(weights.max(initial=0), 1)
    for ax, d in zip(axes, (1, 2), strict=True):
        edges = pair[pair["d"] == d]
        sets = {(r.concept_a, r.concept_b): r.set for r in edges.itertuples()}
        # Order concepts by their set, so the matched ones face each other.
        order_a = _order(names_a, edges, "concept_a")
        order_b = _order(names_b, edges, "concept_b")
        ya = {n: -k for k, n in enumerate(order_a)}
        yb = {n: -k for k, n in enumerate(order_b)}
        colors = _colors(max(edges["set"].max() + 1, 1) if len(edges) else 1)
        for i, j in zip(*np.nonzero(weights), strict=True):
            na, nb = names_a[i], names_b[j]
            matched = (na, nb) in sets
            ax.plot(
                [0, 1],
                [ya[na], yb[nb]],
                color=colors[sets[(na, nb)] % len(colors)] if matched else "0.8",
                linewidth=0.8 + 5 * weights[i, j] / top,
                zorder=2 if matched else 1,
                solid_capstyle="round",
            )
            if matched:
                ax.text(
                    0.5,
                    (ya[na] + yb[nb]) / 2,
                    str(weights[i, j]),
                    fontsize=7,
                    ha="center",
                    va="center",
                    zorder=3,
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8},
                )
        for name, y in ya.items():
            ax.text(-0.03, y, name, ha="right", va="center", fontsize=8)
        for name, y in yb.items():
            ax.text(1.03, y, name, ha="left", va="center", fontsize=8)
        ax.scatter([0] * len(ya), list(ya.values()), s=14, color="black", zorder=4)
        ax.scatter([1] * len(yb), list(yb.values()), s=14, color="black", zorder=4)
        total = int(edges["weight"].sum()) if len(edges) else 0
        both = int(weights.sum())
        ax.set_title(f"D = {d}: {total} of {both} shared activations matched", fontsize=10)
        ax.set_xlim(-0.6, 1.6)
        ax.set_ylim(-max(len(ya), len(yb), 1) + 0.4, 0.8)
        ax.axis("off")
    figure.suptitle(
        f"{category.category}: {annotator_a} (left) vs {annotator_b} (right)", fontsize=11, y=1.06
    )
    return figure


def _order(names: Sequence[str], edges: pd.DataFrame, column: str) -> list[str]:
    first_set = edges.groupby(column)["set"].min().to_dict() if len(edges) else {}
    return sorted(names, key=lambda n: (first_set.get(n, np.inf), n))
