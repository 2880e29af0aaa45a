"""RQ3, first part: do annotators agree on which activations to name? (the paper's Figure 6)

For n = 0..N (N = the category's annotators), the fraction of the category's activations named
by exactly n annotators; and Krippendorff's alpha on the nominal "named / not named" data,
the chance-corrected counterpart the paper lacks (NaN when every answer is the same, where
alpha is undefined, or with fewer than two annotators).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from analysis.measures.labels import CategoryNamings

__all__ = [
    "NAMED_BY_COLUMNS",
    "RELIABILITY_COLUMNS",
    "named_alpha",
    "named_by_table",
    "reliability_table",
]

NAMED_BY_COLUMNS = ["category", "n_annotators", "activations", "fraction"]
RELIABILITY_COLUMNS = ["category", "annotators", "activations", "alpha_named"]


def named_by_table(categories: Iterable[CategoryNamings]) -> pd.DataFrame:
    """named_by.csv: per category, activations named by exactly n annotators, n = 0..N."""
    rows = []
    for cat in categories:
        counts = np.bincount(cat.named.sum(axis=0), minlength=len(cat.annotators) + 1)
        total = cat.activation_ids.size
        for n, count in enumerate(counts):
            rows.append(
                {
                    "category": cat.category,
                    "n_annotators": n,
                    "activations": int(count),
                    "fraction": float(count / total) if total else float("nan"),
                }
            )
    return pd.DataFrame(rows, columns=NAMED_BY_COLUMNS)


def named_alpha(named: np.ndarray) -> float:
    """Krippendorff's alpha (nominal) of a boolean (annotators, activations) "named" table.

    Computed by the ``krippendorff`` package; for two annotators by its closed form
    alpha = 1 - (n - 1) * disagreements / (n_named * n_unnamed), n = 2 * activations, which
    is the same number (tested) and much faster for the many pairs of a large study.
    """
    named = np.asarray(named, dtype=bool)
    if named.shape[0] < 2 or named.shape[1] == 0:
        return float("nan")
    n_named = int(named.sum())
    n_values = named.size
    if n_named in (0, n_values):  # a single value: alpha is undefined
        return float("nan")
    if named.shape[0] == 2:
        disagreements = int((named[0] != named[1]).sum())
        return 1.0 - (n_values - 1) * disagreements / (n_named * (n_values - n_named))
    import krippendorff

    return float(
        krippendorff.alpha(reliability_data=named.astype(float), level_of_measurement="nominal")
    )


def reliability_table(categories: Iterable[CategoryNamings]) -> pd.DataFrame:
    """reliability.csv: Krippendorff's alpha on named / not named, per category."""
    rows = [
        {
            "category": cat.category,
            "annotators": len(cat.annotators),
            "activations": cat.activation_ids.size,
            "alpha_named": named_alpha(cat.named),
        }
        for cat in categories
    ]
    return pd.DataFrame(rows, columns=RELIABILITY_COLUMNS)
