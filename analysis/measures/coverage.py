"""RQ1: how much of the category the namings cover (the paper's Figures 3-5).

- Activation coverage: named activations / the category's significant activations.
- Partial (complete) explanation coverage: fraction of the category's images (those with at
  least one significant activation) with at least one (all) of their significant activations
  named.
- The "any" row: an activation counts as named when at least one annotator named it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from analysis.measures.labels import CategoryNamings

__all__ = ["ANY_ANNOTATOR", "COVERAGE_COLUMNS", "coverage_row", "coverage_table"]

ANY_ANNOTATOR = "any"
COVERAGE_COLUMNS = [
    "category",
    "annotator",
    "activations",
    "named",
    "activation_coverage",
    "images",
    "partial_coverage",
    "complete_coverage",
]


def coverage_row(named: np.ndarray, image_index: np.ndarray, n_images: int) -> dict[str, float]:
    """Coverage of one boolean "named" vector over a category's activations.

    Parameters
    ----------
    named
        One bool per activation.
    image_index
        The image of each activation, as an index in ``range(n_images)``.
    n_images
        Number of images with at least one significant activation.
    """
    named = np.asarray(named, dtype=bool)
    total = named.size
    per_image = np.bincount(image_index, minlength=n_images)
    named_per_image = np.bincount(image_index, weights=named, minlength=n_images)
    return {
        "activations": total,
        "named": int(named.sum()),
        "activation_coverage": float(named.sum() / total) if total else float("nan"),
        "images": n_images,
        "partial_coverage": float((named_per_image > 0).mean()) if n_images else float("nan"),
        "complete_coverage": float((named_per_image == per_image).mean())
        if n_images
        else float("nan"),
    }


def coverage_table(categories: Iterable[CategoryNamings]) -> pd.DataFrame:
    """coverage.csv: one row per category and annotator, then the category's "any" row."""
    rows = []
    for cat in categories:
        named = cat.named
        for a, annotator in enumerate(cat.annotators):
            rows.append(
                {"category": cat.category, "annotator": annotator}
                | coverage_row(named[a], cat.image_index, len(cat.image_ids))
            )
        rows.append(
            {"category": cat.category, "annotator": ANY_ANNOTATOR}
            | coverage_row(named.any(axis=0), cat.image_index, len(cat.image_ids))
        )
    return pd.DataFrame(rows, columns=COVERAGE_COLUMNS)
