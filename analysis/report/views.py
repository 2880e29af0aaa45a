"""What report.html shows, as plain data for its templates (analysis/report/templates/).

:func:`table` turns a DataFrame into rows of formatted cells; :func:`gallery_view`,
:func:`explanations_view` and :func:`distrust_view` build the three picture sections from
:class:`analysis.Results`. Pictures are referred to by activation id and collected in a set
(``needed``), so the report can make every thumbnail at once before rendering.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis.measures.distrust import DECISION_LEVEL, PRIOR, map_verdicts
from analysis.pipeline import Results
from analysis.report.explanation_images import image_maps, image_shares, share_of

__all__ = [
    "HTML_CATEGORIES",
    "distrust_view",
    "explanations_view",
    "fmt",
    "gallery_view",
    "image_categories",
    "limited",
    "table",
]

HTML_CATEGORIES = 50
"""Tables in report.html show at most this many categories; the CSV files hold all."""
THUMBNAIL_BUDGET = 3000
"""Thumbnails the gallery and the explanations may show together (about 1.3 KB each)."""
DISTRUST_CATEGORIES = 3
"""Categories whose most distrusted decisions are shown with their maps (all flagged ones)."""
DISTRUST_DECISIONS = 6
"""Decisions shown per such category."""


def fmt(value: object, digits: int = 2) -> str:
    """A cell's text: floats rounded, NaN empty."""
    if isinstance(value, float | np.floating):
        return "" if pd.isna(value) else f"{value:.{digits}f}"
    return str(value)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _percent(value: float) -> str:
    return f"{100 * value:.0f}%"


def table(
    frame: pd.DataFrame,
    formatter: Callable[[object], str] = fmt,
    *,
    note: str = "",
    empty: str = "",
    highlight: Sequence[bool] | None = None,
) -> dict:
    """A table for the ``table`` macro: columns, rows of cells, an optional note.

    Columns of text (names, identifiers) are left-aligned, numbers right-aligned.
    """
    text = [not _numeric(frame[c]) for c in frame.columns]
    rows = []
    flags = list(highlight) if highlight is not None else [False] * len(frame)
    for values, flagged in zip(frame.itertuples(index=False), flags, strict=True):
        cells = [{"text": formatter(v), "text_like": t} for v, t in zip(values, text, strict=True)]
        rows.append({"cells": cells, "cls": "flagged" if flagged else ""})
    return {
        "columns": [str(c) for c in frame.columns],
        "text_columns": [str(c) for c, t in zip(frame.columns, text, strict=True) if t],
        "rows": rows,
        "note": note,
        "empty": empty,
    }


def _numeric(column: pd.Series) -> bool:
    """Numbers, or text that reads as numbers ("0.70 ± 0.09", "1.00", "")."""
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return True
    values = column.dropna().astype(str).str.replace("±", " ", regex=False).str.split()
    words = [w for ws in values for w in ws]
    return bool(words) and all(_is_number(w) for w in words)


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def limited(frame: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """At most :data:`HTML_CATEGORIES` categories of ``frame``, and a note when cut."""
    categories = sorted(frame["category"].unique()) if "category" in frame else []
    if len(categories) <= HTML_CATEGORIES:
        return frame, ""
    keep = set(categories[:HTML_CATEGORIES])
    note = f"First {HTML_CATEGORIES} of {len(categories)} categories; the CSV file holds all."
    return frame[frame["category"].isin(keep)], note


def image_categories(
    results: Results, *, chosen: Sequence[str] | None = None, budget: int = THUMBNAIL_BUDGET
) -> tuple[list[str], str]:
    """The categories the gallery and the explanations show, and a note when not all.

    ``chosen`` (names) wins; else flagged categories first, then the others by name, while
    their thumbnails fit in ``budget`` (at least one category).

    Raises
    ------
    ValueError
        A chosen category that the results do not have.
    """
    names = [c.category for c in results.categories]
    if chosen:
        unknown = [c for c in chosen if c not in names]
        if unknown:
            raise ValueError(
                f"--image-categories: no category {unknown[0]!r}; the categories are listed "
                "in coverage.csv"
            )
        return sorted(chosen), f"Showing the {len(chosen)} chosen categories of {len(names)}."
    flagged = list(results.distrust.loc[results.distrust["flagged"], "category"])
    order = flagged + [c for c in names if c not in set(flagged)]
    gallery = results.gallery
    cost = (
        gallery.assign(n=gallery["examples"].str.split().str.len().fillna(0))
        .groupby("category")["n"]
        .sum()
    )
    examples = results.explanation_examples
    maps_per_image = (
        results.activations.groupby("category").size()
        / results.activations.groupby("category")["image_id"].nunique()
    )
    shown_images = examples.assign(n=examples["examples"].str.split().str.len().fillna(0))
    cost = cost.add(
        shown_images.groupby("category")["n"].sum() * maps_per_image, fill_value=0
    ).reindex(names, fill_value=0)
    shown, spent = [], 0.0
    for category in order:
        if shown and spent + cost[category] > budget:
            break
        shown.append(category)
        spent += cost[category]
    if len(shown) == len(names):
        return sorted(shown), ""
    return sorted(shown), (
        f"Pictures for {len(shown)} of {len(names)} categories (a budget of {budget} "
        "thumbnails keeps report.html small; flagged categories first, then by name). "
        "Choose others with --image-categories; the CSV files hold every category."
    )


def _category_facts(results: Results) -> dict[str, dict]:
    return {
        c.category: {"activations": len(c.activation_ids), "images": len(c.image_ids)}
        for c in results.categories
    }


def gallery_view(results: Results, categories: Sequence[str], needed: set[str]) -> list[dict]:
    """Per shown category and annotator, the gallery's cards with their example maps."""
    by_category = {c: g for c, g in results.gallery.groupby("category", sort=False)}
    facts = _category_facts(results)
    view = []
    for category in categories:
        rows = by_category.get(category, results.gallery.iloc[:0])
        annotators = []
        for annotator, cards in rows.groupby("annotator", sort=True):
            total = int(cards["activations"].sum())
            share = cards.groupby("kind")["activations"].sum() / max(total, 1)
            named = cards[cards["kind"] == "named"]
            summary = (
                f"{_count(len(named), 'concept')}; "
                f"{_percent(share.get('named', 0.0))} named, "
                f"{_percent(share.get('unnamed', 0.0))} unnamed, "
                f"{_percent(share.get('discarded', 0.0))} discarded"
            )
            shown_cards = []
            for card in cards.itertuples(index=False):
                ids = card.examples.split()
                needed.update(ids)
                shown_cards.append(
                    {
                        "kind": card.kind,
                        "title": card.concept if card.kind == "named" else card.kind,
                        "activations": int(card.activations),
                        "facts": f"{_count(int(card.activations), 'map')}, "
                        f"{_count(int(card.images), 'image')}",
                        "x_features": card.x_features,
                        "thumbs": ids,
                    }
                )
            annotators.append({"name": annotator, "summary": summary, "cards": shown_cards})
        view.append({"category": category, **facts[category], "annotators": annotators})
    return view


def _map_caption(name: str | None, share: float) -> str:
    return f"{name if name is not None else 'unnamed'} {_percent(share)}"


def explanations_view(results: Results, categories: Sequence[str], needed: set[str]) -> list[dict]:
    """Per shown category and annotator, the top explanation types with example images."""
    by_name = {c.category: c for c in results.categories}
    examples = {
        key: group for key, group in results.explanation_examples.groupby("category", sort=False)
    }
    view = []
    of = share_of(results.activations)
    for category in categories:
        cat = by_name[category]
        shares = image_shares(cat, of)
        image_number = {str(i): k for k, i in enumerate(cat.image_ids)}
        rows = examples.get(category, results.explanation_examples.iloc[:0])
        annotators = []
        for annotator, types in rows.groupby("annotator", sort=True):
            a = cat.annotators.index(annotator)
            shown_types = []
            for t in types.sort_values("rank").itertuples(index=False):
                shown = []
                for image_id in t.examples.split():
                    maps = image_maps(cat, a, image_number[image_id], shares)
                    needed.update(m.activation_id for m in maps)
                    shown.append(
                        {
                            "image_id": image_id,
                            "text": ", ".join(_map_caption(m.name, m.share) for m in maps),
                            "maps": [
                                {
                                    "thumb": m.activation_id,
                                    "caption": _map_caption(m.name, m.share),
                                    "title": f"{m.activation_id} (x{m.x_feature})",
                                }
                                for m in maps
                            ],
                        }
                    )
                shown_types.append(
                    {
                        "explanation": t.explanation,
                        "fraction": _percent(t.fraction),
                        "images": int(t.images),
                        "examples": shown,
                    }
                )
            top = shown_types[0] if shown_types else None
            summary = f"most often ({top['explanation']}), {top['fraction']}" if top else ""
            annotators.append({"name": annotator, "summary": summary, "types": shown_types})
        view.append({"category": category, "annotators": annotators})
    return view


def distrust_view(results: Results, needed: set[str]) -> dict:
    """The ranking, the flagged categories, and the top categories' most distrusted decisions."""
    ranked = results.distrust
    named = ranked.dropna(subset=["distrusted_share"])
    flagged = named[named["flagged"]]
    shown_categories = list(named["category"].head(max(DISTRUST_CATEGORIES, len(flagged))))
    maps_of_image = _judged_maps(results, shown_categories)
    decisions = results.distrust_decisions
    shown = []
    for category in shown_categories:
        worst = decisions[decisions["category"] == category].sort_values(
            ["distrust", "image_id"], ascending=[False, True]
        )
        items = [
            _distrusted_decision(decision, maps_of_image[decision.image_id], needed)
            for decision in worst.head(DISTRUST_DECISIONS).itertuples(index=False)
        ]
        row = named[named["category"] == category].iloc[0]
        shown.append({"category": category, "summary": _distrust_summary(row), "decisions": items})
    top = named.iloc[0] if len(named) else None
    words = sorted(results.distrust_words.entries)
    return {
        "flagged": [
            {"category": r.category, "share": _percent(r.distrusted_share)}
            for r in flagged.itertuples(index=False)
        ],
        "ranked": len(named) > 0,
        "highest": (
            f"{top['category']} ({_percent(top['distrusted_share'])})" if top is not None else ""
        ),
        "threshold_text": _percent(results.distrust_threshold),
        "decision_level": f"{DECISION_LEVEL:g}",
        "prior": f"{PRIOR:g}",
        "words": ", ".join(f'"{w}"' for w in words[:8]) + (", ..." if len(words) > 8 else ""),
        "table": _distrust_table(ranked),
        "shown": shown,
        "figure": None,
    }


def _judged_maps(results: Results, categories: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Per image of ``categories``: its maps with the annotators' verdicts and ``s``, each
    map's share of the class score."""
    chosen = set(categories)
    verdicts = map_verdicts(
        [c for c in results.categories if c.category in chosen],
        results.namings[results.namings["category"].isin(categories)],
        results.activations[results.activations["category"].isin(categories)],
        results.distrust_words,
    )
    shares = {}
    of = share_of(results.activations)
    for cat in results.categories:
        if cat.category in chosen:
            shares.update(zip(cat.activation_ids, image_shares(cat, of), strict=True))
    verdicts = verdicts.assign(s=verdicts["activation_id"].map(shares))
    return {image: maps for image, maps in verdicts.groupby("image_id", sort=False)}


def _distrusted_decision(decision: Any, maps: pd.DataFrame, needed: set[str]) -> dict:
    """One decision (a row of ``distrust_decisions``): its evidence, and its maps' verdicts
    with the largest share of the class score first."""
    maps = maps.sort_values("s", ascending=False)
    needed.update(maps["activation_id"])
    return {
        "image_id": decision.image_id,
        "distrust": f"{decision.distrust:.2f}",
        "verdicts": (
            f"evidence {_percent(decision.rejected_evidence)} rejected, "
            f"{_percent(decision.unnamed_evidence)} unnamed, "
            f"{_percent(decision.named_evidence)} named"
        ),
        "maps": [
            {
                "thumb": m.activation_id,
                "caption": f"x{m.x_feature} {_percent(m.s)}",
                "title": (
                    f"{m.activation_id}: rejected by {m.rejected}, unnamed by "
                    f"{m.unnamed}, named by {m.named} of {m.annotators}"
                ),
            }
            for m in maps.itertuples(index=False)
        ],
    }


def _distrust_summary(row: pd.Series) -> str:
    """A shown category's line: its rank, distrusted decisions and evidence."""
    return (
        f"Rank {int(row['rank'])}: {int(row['distrusted'])} of "
        f"{int(row['decisions'])} decisions distrusted "
        f"({_percent(row['distrusted_share'])}); on average "
        f"{_percent(row['rejected_evidence'])} of a decision's evidence is rejected "
        f"and {_percent(row['unnamed_evidence'])} unnamed. Captions: X-feature and "
        "share of the class score; hover a map for the annotators' verdicts."
    )


def _distrust_table(ranked: pd.DataFrame) -> dict:
    """The ranking's table: the first :data:`HTML_CATEGORIES` categories, flagged ones marked."""
    columns = {
        "rank": "rank",
        "category": "category",
        "decisions": "decisions",
        "distrusted": "distrusted",
        "distrusted_share": "share distrusted",
        "mean_distrust": "mean distrust",
        "rejected_evidence": "evidence rejected",
        "unnamed_evidence": "evidence unnamed",
        "annotators": "annotators",
    }
    head = ranked.head(HTML_CATEGORIES)
    note = (
        f"The {HTML_CATEGORIES} highest of {len(ranked)} categories; distrust.csv holds all."
        if len(ranked) > HTML_CATEGORIES
        else ""
    )
    return table(
        head.loc[:, list(columns)].rename(columns=columns),
        note=note,
        empty="No decisions.",
        highlight=list(head["flagged"]),
    )
