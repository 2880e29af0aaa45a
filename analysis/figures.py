"""The paper's figures, drawn with matplotlib's object API (no pyplot state, no display).

- :func:`coverage_figure`: coverage per category and annotator (Figures 3-5);
- :func:`named_by_figure`: fraction of activations named by exactly n annotators (Figure 6);
- :func:`matching_figure`: the D = 1 and D = 2 matchings of one pair of annotators (Figure 7).

Each returns a :class:`matplotlib.figure.Figure`; :func:`png_bytes` renders one.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.coverage import ANY_ANNOTATOR
from analysis.labels import CategoryNamings
from analysis.matching import intersection_graph

__all__ = [
    "MAX_CATEGORIES",
    "coverage_figure",
    "matching_figure",
    "named_by_figure",
    "png_bytes",
]

MAX_CATEGORIES = 30
"""Bar charts show at most this many categories (the first, sorted); the tables hold all."""


def png_bytes(figure: Figure, *, dpi: int = 110) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def _first_categories(categories: Sequence[str]) -> tuple[list[str], str]:
    categories = sorted(set(categories))
    if len(categories) <= MAX_CATEGORIES:
        return categories, ""
    return categories[:MAX_CATEGORIES], f" (first {MAX_CATEGORIES} of {len(categories)} categories)"


def _grouped_bars(ax, table: pd.DataFrame, series: list, labels: list[str], width_total=0.8):
    """Bars of table (categories x series) grouped by category."""
    x = np.arange(len(table.index))
    width = width_total / max(len(series), 1)
    cmap = _colors(len(series))
    for k, (column, label) in enumerate(zip(series, labels, strict=True)):
        style = {"color": "0.25"} if label == ANY_ANNOTATOR else {"color": cmap[k]}
        ax.bar(x + (k - (len(series) - 1) / 2) * width, table[column], width, label=label, **style)
    ax.set_xticks(x, [str(c) for c in table.index], rotation=45 if len(x) > 12 else 0, ha="right")
    ax.set_xlim(-0.6, len(x) - 0.4)


def _width(categories: int, series: int) -> float:
    """Inches: room for the bars, between a readable minimum and a screen-wide maximum."""
    return min(20.0, max(6.0, 0.16 * categories * max(series, 1) + 3))


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab20" if n > 10 else "tab10"]
    return [cmap(k % cmap.N) for k in range(n)]


def coverage_figure(coverage: pd.DataFrame, *, measure: str = "activation_coverage") -> Figure:
    """Grouped bars of one coverage measure per category: each annotator, then "any".

    Parameters
    ----------
    coverage
        coverage.csv.
    measure
        activation_coverage (Figure 3), partial_coverage (Figure 4) or complete_coverage
        (Figure 5).
    """
    titles = {
        "activation_coverage": "Fraction of significant activations named",
        "partial_coverage": "Partial explanation coverage",
        "complete_coverage": "Complete explanation coverage",
    }
    if measure not in titles:
        raise ValueError(f"measure must be one of {', '.join(titles)}, got {measure!r}")
    shown, suffix = _first_categories(coverage["category"])
    table = coverage[coverage["category"].isin(shown)].pivot_table(
        index="category", columns="annotator", values=measure, dropna=False
    )
    annotators = [a for a in table.columns if a != ANY_ANNOTATOR]
    series = [*annotators, ANY_ANNOTATOR] if ANY_ANNOTATOR in table.columns else annotators
    labels = [*annotators, "any annotator"][: len(series)]
    labels = [
        ANY_ANNOTATOR if s == ANY_ANNOTATOR else label
        for s, label in zip(series, labels, strict=True)
    ]
    figure = Figure(figsize=(_width(len(table), len(series)), 4))
    ax = figure.subplots()
    _grouped_bars(ax, table, series, labels)
    ax.set_ylim(0, 1)
    ax.set_ylabel("fraction")
    ax.set_xlabel("category")
    ax.set_title(titles[measure] + suffix)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return figure


def named_by_figure(named_by: pd.DataFrame) -> Figure:
    """Grouped bars: per category, the fraction of activations named by exactly n annotators."""
    shown, suffix = _first_categories(named_by["category"])
    table = named_by[named_by["category"].isin(shown)].pivot_table(
        index="category", columns="n_annotators", values="fraction", fill_value=0.0
    )
    series = list(table.columns)
    figure = Figure(figsize=(_width(len(table), len(series)), 4))
    ax = figure.subplots()
    _grouped_bars(ax, table, series, [f"n = {n}" for n in series])
    ax.set_ylim(0, 1)
    ax.set_ylabel("fraction of activations")
    ax.set_xlabel("category")
    ax.set_title("Activations named by exactly n annotators" + suffix)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(axis="y", alpha=0.3)
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
        f"{category.category}: {annotator_a} (left) vs {annotator_b} (right)", fontsize=11
    )
    return figure


def _order(names: Sequence[str], edges: pd.DataFrame, column: str) -> list[str]:
    first_set = edges.groupby(column)["set"].min().to_dict() if len(edges) else {}
    return sorted(names, key=lambda n: (first_set.get(n, np.inf), n))
