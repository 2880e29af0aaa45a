"""The concept gallery: what each annotator's concepts cover, as counts and example maps.

Per category and annotator, one card per concept (after cleaning), then one for the maps they
left unnamed and one for those they discarded: how many maps and images it holds, its
X-features (the share of its maps on each) and a few example activations to show as
thumbnails. The counts are those of the namings: a concept's maps are the rows naming it,
"unnamed" holds every other map of the category the annotator did not name or discard
(unsorted, not seen, or in a concept cleaning dropped), so the cards of one annotator add up to
the category's significant activations.

Examples are the maps with the largest share of their decision's positive score (the clearest
instances; activation order without a ``share`` column), one per image.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.inputs import SHARE
from analysis.measures.labels import CategoryNamings
from label_config import DISCARDED, NAMED, UNNAMED

__all__ = ["EXAMPLES", "GALLERY_COLUMNS", "gallery_table"]

EXAMPLES = 4
"""Example maps per card."""
GALLERY_COLUMNS = [
    "category",
    "annotator",
    "kind",
    "concept",
    "activations",
    "images",
    "x_features",
    "examples",
]


def _x_features(x: np.ndarray) -> str:
    """'x2 80%, x4 20%': the concept's X-features, most frequent first."""
    values, counts = np.unique(x, return_counts=True)
    order = np.lexsort((values, -counts))
    return ", ".join(f"x{values[i]} {100 * counts[i] / len(x):.0f}%" for i in order)


def _examples(positions: np.ndarray, cat: CategoryNamings, share: np.ndarray, k: int) -> list:
    """Up to k activation ids of ``positions``, largest share first, one per image."""
    order = positions[np.lexsort((positions, -share[positions]))]
    seen: set[int] = set()
    chosen = []
    for p in order:
        image = int(cat.image_index[p])
        if image in seen:
            continue
        seen.add(image)
        chosen.append(str(cat.activation_ids[p]))
        if len(chosen) == k:
            break
    return chosen


def gallery_table(
    categories: Sequence[CategoryNamings],
    namings: pd.DataFrame,
    activations: pd.DataFrame,
    *,
    examples: int = EXAMPLES,
) -> pd.DataFrame:
    """gallery.csv: one row per concept card (named concepts, then unnamed, then discarded).

    Parameters
    ----------
    categories
        From :func:`analysis.category_namings` (concept codes after cleaning).
    namings
        The checked, cleaned tidy namings (which maps were discarded).
    activations
        The checked activations table (its ``share`` chooses the examples).
    examples
        Example activations per card.

    Returns
    -------
    pandas.DataFrame
        :data:`GALLERY_COLUMNS`; ``kind`` is named, unnamed or discarded, ``concept`` the
        name ("" for the other kinds), ``examples`` space-separated activation ids. Cards
        with no map are left out.
    """
    if examples < 0:
        raise ValueError(f"examples must be >= 0, got {examples}")
    share_of = (
        dict(zip(activations["activation_id"], activations[SHARE], strict=True))
        if SHARE in activations.columns
        else {}
    )
    discarded = namings.loc[namings["status"] == DISCARDED, ["annotator", "activation_id"]]
    discarded_by = discarded.groupby("annotator")["activation_id"].apply(set).to_dict()
    rows = []
    for cat in categories:
        share = np.array([share_of.get(a, 0.0) for a in cat.activation_ids], dtype=float)
        for a, annotator in enumerate(cat.annotators):
            labels = cat.labels[a]
            thrown = discarded_by.get(annotator, set())
            is_discarded = np.array([i in thrown for i in cat.activation_ids], dtype=bool)
            cards = [
                (NAMED, name, np.flatnonzero(labels == k)) for k, name in enumerate(cat.concepts[a])
            ]
            cards.sort(key=lambda card: -len(card[2]))  # largest concept first
            cards.append((UNNAMED, "", np.flatnonzero((labels < 0) & ~is_discarded)))
            cards.append((DISCARDED, "", np.flatnonzero(is_discarded)))
            for kind, name, positions in cards:
                if len(positions) == 0:
                    continue
                rows.append(
                    {
                        "category": cat.category,
                        "annotator": annotator,
                        "kind": kind,
                        "concept": name,
                        "activations": len(positions),
                        "images": len(np.unique(cat.image_index[positions])),
                        "x_features": _x_features(cat.x_features[positions]),
                        "examples": " ".join(_examples(positions, cat, share, examples)),
                    }
                )
    return pd.DataFrame(rows, columns=GALLERY_COLUMNS)
