"""Namings of one category as integer arrays: the shared input of every measure.

For each category, the activations (in the activations table's order) get one row of concept
codes per annotator, ``-1`` where the annotator did not name the activation (unnamed,
discarded, or not seen). Every measure reads these arrays, so tables are built once.

An annotator takes part in a category when the namings hold at least one row (any status)
for them in it; they are then compared on all of the category's activations, and the ones
they did not see count as unnamed. An annotator with no row at all in a category is left out
of that category's tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from label_config import NAMED

__all__ = ["CategoryNamings", "category_namings"]


@dataclass(frozen=True)
class CategoryNamings:
    """The namings of one category.

    Attributes
    ----------
    category
        The category's name.
    activation_ids
        The category's significant activations.
    image_ids
        The distinct images holding them.
    image_index
        For each activation, the index of its image in ``image_ids``.
    x_features
        For each activation, its X-feature.
    annotators
        The annotators taking part, sorted.
    labels
        ``(len(annotators), len(activation_ids))`` concept codes, -1 where not named.
    concepts
        Per annotator, the concept names; code k names ``concepts[a][k]``.
    """

    category: str
    activation_ids: np.ndarray
    image_ids: np.ndarray
    image_index: np.ndarray
    x_features: np.ndarray
    annotators: tuple[str, ...]
    labels: np.ndarray
    concepts: tuple[tuple[str, ...], ...]

    @property
    def named(self) -> np.ndarray:
        """Boolean ``(annotators, activations)``: who named what."""
        return self.labels >= 0


def category_namings(activations: pd.DataFrame, namings: pd.DataFrame) -> list[CategoryNamings]:
    """Split checked activations and namings into one :class:`CategoryNamings` per category.

    Categories come in sorted order; a category of the activations table that nobody named
    still appears, with no annotators.
    """
    by_category = {c: g for c, g in namings.groupby("category", sort=False)}
    result = []
    for category, acts in activations.groupby("category", sort=True):
        ids = acts["activation_id"].to_numpy()
        image_ids, image_index = np.unique(acts["image_id"].to_numpy(), return_inverse=True)
        position = pd.Series(np.arange(len(ids)), index=ids)
        rows = by_category.get(category, namings.iloc[:0])
        annotators = tuple(sorted(rows["annotator"].unique()))
        labels = -np.ones((len(annotators), len(ids)), dtype=np.int64)
        concepts: list[tuple[str, ...]] = [() for _ in annotators]
        named_rows = rows[rows["status"] == NAMED]
        for annotator, named in named_rows.groupby("annotator", sort=False):
            a = annotators.index(annotator)
            names, codes = np.unique(named["concept"].to_numpy(dtype=str), return_inverse=True)
            labels[a, position[named["activation_id"]].to_numpy()] = codes
            concepts[a] = tuple(str(n) for n in names)
        result.append(
            CategoryNamings(
                category=str(category),
                activation_ids=ids,
                image_ids=image_ids,
                image_index=image_index,
                x_features=acts["x_feature"].to_numpy(dtype=np.int64),
                annotators=annotators,
                labels=labels,
                concepts=tuple(concepts),
            )
        )
    return result
