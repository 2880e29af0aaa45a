"""RQ2 after alignment: does each X-feature carry the concept it was trained to carry?

An xNN aligned with the annotators' concepts (``xnaming train xnn --namings``) fixes, before
anyone looks at the new maps, which X-feature carries which concept; ``xnaming explain`` copies
that into the bundle's manifest (``concepts``). Where the paper's XC-purity gives each X-feature
the concept most of its maps got, the *carried purity* holds it to its fixed concept: of an
annotator's named maps on X-features that carry a concept, the share named with that concept.
Maps on free X-features (the evidence nobody named) do not count. Names are compared without
case or surrounding space, as annotators type them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from analysis.measures.labels import CategoryNamings

__all__ = ["CARRIED_COLUMNS", "Carried", "carried_purity", "carried_table"]

Carried = Mapping[str, Mapping[int, str]]
"""Per category, X-feature -> the concept it carries (an X-feature not listed is free)."""

CARRIED_COLUMNS = [
    "category", "x_feature", "carries", "annotator", "maps", "named", "named_as_carried",
    "most_named",
]  # fmt: skip
FREE = "(free)"
"""``carries`` of an X-feature that carries no concept."""


def _same(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


def _names(cat: CategoryNamings, a: int, rows: np.ndarray) -> list[str]:
    """The concept annotator ``a`` gave each of ``rows`` that they named."""
    codes = cat.labels[a][rows]
    return [cat.concepts[a][c] for c in codes[codes >= 0]]


def carried_purity(cat: CategoryNamings, a: int, carried: Mapping[int, str]) -> float:
    """Of annotator ``a``'s named maps on X-features carrying a concept, the share named with
    it; NaN when they named none of those maps (or no X-feature carries a concept)."""
    hits = total = 0
    for k, concept in carried.items():
        names = _names(cat, a, cat.x_features == k)
        total += len(names)
        hits += sum(_same(name, concept) for name in names)
    return hits / total if total else float("nan")


def carried_table(categories: Iterable[CategoryNamings], carried: Carried) -> pd.DataFrame:
    """carried.csv: per category of ``carried``, X-feature with significant maps (and every
    X-feature carrying a concept) and annotator: the concept it carries (``(free)`` when
    none), its maps, how many the annotator named, the share named with the carried concept
    (NaN when free or none named) and the annotator's most frequent name for them."""
    rows = []
    for cat in categories:
        if cat.category not in carried:
            continue
        mine = carried[cat.category]
        for k in sorted(set(np.unique(cat.x_features).tolist()) | set(mine)):
            on_k = cat.x_features == k
            for a, annotator in enumerate(cat.annotators):
                names = _names(cat, a, on_k)
                concept = mine.get(k)
                hits = sum(_same(n, concept) for n in names) if concept else 0
                rows.append({
                    "category": cat.category,
                    "x_feature": k,
                    "carries": concept or FREE,
                    "annotator": annotator,
                    "maps": int(on_k.sum()),
                    "named": len(names),
                    "named_as_carried": hits / len(names) if concept and names else np.nan,
                    "most_named": pd.Series(names).mode().iloc[0] if names else "",
                })  # fmt: skip
    return pd.DataFrame(rows, columns=CARRIED_COLUMNS)
