"""Test-set explanation summaries (the paper's Table 4).

An image's explanation, for one annotator, is the set of concept names of its named
significant activations, written sorted and joined by " + " (e.g. "close wing + eye");
"unlabeled" when none of them is named. With ``other=True``, an image with both named and
unnamed activations also gets "other" (the paper's Section 3.3). Per category and annotator:
the number and fraction of the category's images with each explanation, most frequent first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import pandas as pd

from analysis.measures.labels import CategoryNamings

__all__ = ["OTHER", "SUMMARY_COLUMNS", "UNLABELED", "explanations", "summary_table"]

SUMMARY_COLUMNS = ["category", "annotator", "explanation", "images", "fraction"]
UNLABELED = "unlabeled"
OTHER = "other"
SEPARATOR = " + "


def explanations(cat: CategoryNamings, annotator: int, *, other: bool = False) -> list[str]:
    """The explanation of each image of ``cat`` (in ``cat.image_ids`` order) for one annotator."""
    names: list[set[str]] = [set() for _ in cat.image_ids]
    unnamed = [False] * len(cat.image_ids)
    concepts = cat.concepts[annotator]
    for image, code in zip(cat.image_index, cat.labels[annotator], strict=True):
        if code >= 0:
            names[image].add(concepts[code])
        else:
            unnamed[image] = True
    result = []
    for image_names, has_unnamed in zip(names, unnamed, strict=True):
        if not image_names:
            result.append(UNLABELED)
            continue
        parts = sorted(image_names)
        if other and has_unnamed:
            parts.append(OTHER)
        result.append(SEPARATOR.join(parts))
    return result


def summary_table(categories: Iterable[CategoryNamings], *, other: bool = False) -> pd.DataFrame:
    """summaries.csv: per category and annotator, each explanation's images and fraction."""
    rows = []
    for cat in categories:
        n_images = len(cat.image_ids)
        for a, annotator in enumerate(cat.annotators):
            counts = Counter(explanations(cat, a, other=other))
            for explanation, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
                rows.append(
                    {
                        "category": cat.category,
                        "annotator": annotator,
                        "explanation": explanation,
                        "images": count,
                        "fraction": count / n_images,
                    }
                )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
