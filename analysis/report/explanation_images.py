"""Explanations with their images: the paper's Table 4, made visual.

Per category and annotator, the most frequent explanation types (:func:`analysis.explanations`:
the sorted set of concept names of an image's named significant maps), each with a few test
images. Each image is shown by its significant maps and what the annotator called them, with
each map's share of the decision's positive score: "crown 62%, wing 38%". The example images of
a type are the ones whose named maps carry most of the decision (the clearest instances).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.inputs import SHARE
from analysis.measures.labels import CategoryNamings
from analysis.measures.summaries import explanations

__all__ = [
    "EXAMPLE_IMAGES",
    "EXPLANATION_COLUMNS",
    "TOP_TYPES",
    "ImageMap",
    "explanation_examples",
    "image_maps",
    "image_shares",
    "share_of",
]

TOP_TYPES = 3
"""Explanation types shown per category and annotator."""
EXAMPLE_IMAGES = 2
"""Test images shown per explanation type."""
EXPLANATION_COLUMNS = [
    "category",
    "annotator",
    "rank",
    "explanation",
    "images",
    "fraction",
    "examples",
]


@dataclass(frozen=True)
class ImageMap:
    """One significant map of a test image, as one annotator named it."""

    activation_id: str
    x_feature: int
    name: str | None  # None: not named by this annotator
    share: float  # of the image's significant maps' positive score, in [0, 1]


def share_of(activations: pd.DataFrame) -> dict[str, float] | None:
    """Activation id -> its share of its decision's positive score; None without ``share``."""
    if SHARE not in activations.columns:
        return None
    return dict(zip(activations["activation_id"], activations[SHARE], strict=True))


def image_shares(cat: CategoryNamings, shares: Mapping[str, float] | None) -> np.ndarray:
    """Each activation's share of its image's significant maps (sums to 1 per image).

    Parameters
    ----------
    cat
        One category's namings.
    shares
        From :func:`share_of`; None (no ``share`` column) or an image whose shares are all 0
        gives its maps equal shares.
    """
    if shares is not None:
        raw = np.array([shares.get(a, 0.0) for a in cat.activation_ids], dtype=float)
    else:
        raw = np.ones(len(cat.activation_ids))
    totals = np.bincount(cat.image_index, weights=raw, minlength=len(cat.image_ids))
    counts = np.bincount(cat.image_index, minlength=len(cat.image_ids))
    total = totals[cat.image_index]
    equal = total <= 0
    return np.where(equal, 1.0 / counts[cat.image_index], raw / np.where(equal, 1.0, total))


def image_maps(
    cat: CategoryNamings, annotator: int, image: int, shares: np.ndarray
) -> list[ImageMap]:
    """The significant maps of image number ``image`` of ``cat``, largest share first."""
    positions = np.flatnonzero(cat.image_index == image)
    positions = positions[np.argsort(-shares[positions], kind="stable")]
    maps = []
    for p in positions:
        code = int(cat.labels[annotator, p]) if annotator >= 0 else -1
        maps.append(
            ImageMap(
                activation_id=str(cat.activation_ids[p]),
                x_feature=int(cat.x_features[p]),
                name=cat.concepts[annotator][code] if code >= 0 else None,
                share=float(shares[p]),
            )
        )
    return maps


def explanation_examples(
    categories: Sequence[CategoryNamings],
    activations: pd.DataFrame,
    *,
    top: int = TOP_TYPES,
    examples: int = EXAMPLE_IMAGES,
    other: bool = False,
) -> pd.DataFrame:
    """explanation_examples.csv: the top explanation types per category and annotator.

    Parameters
    ----------
    categories
        From :func:`analysis.category_namings`.
    activations
        The checked activations table (its ``share`` weighs the maps).
    top, examples
        Explanation types per category and annotator; example images per type.
    other
        As in :func:`analysis.explanations`.

    Returns
    -------
    pandas.DataFrame
        :data:`EXPLANATION_COLUMNS`: ``rank`` 1 = most frequent, ``images`` and ``fraction``
        of the category's images, ``examples`` space-separated image ids, clearest first.
    """
    if top < 1 or examples < 0:
        raise ValueError(f"top must be >= 1 and examples >= 0; got {top} and {examples}")
    rows = []
    of = share_of(activations)
    for cat in categories:
        shares = image_shares(cat, of)
        for a, annotator in enumerate(cat.annotators):
            per_image = explanations(cat, a, other=other)
            named_share = np.bincount(
                cat.image_index, weights=shares * (cat.labels[a] >= 0), minlength=len(cat.image_ids)
            )
            counts = Counter(per_image)
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
            for rank, (explanation, count) in enumerate(ranked, start=1):
                members = [i for i, e in enumerate(per_image) if e == explanation]
                members.sort(key=lambda i: (-named_share[i], str(cat.image_ids[i])))
                rows.append(
                    {
                        "category": cat.category,
                        "annotator": annotator,
                        "rank": rank,
                        "explanation": explanation,
                        "images": count,
                        "fraction": count / len(cat.image_ids),
                        "examples": " ".join(str(cat.image_ids[i]) for i in members[:examples]),
                    }
                )
    return pd.DataFrame(rows, columns=EXPLANATION_COLUMNS)
