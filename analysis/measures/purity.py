"""RQ2: correspondence of concepts and X-features (the paper's Tables 2 and 3).

- CX-purity: each concept is given its majority X-feature; the fraction of named activations
  that belong to the majority X-feature of their concept. Sum over concepts of the largest
  X-feature share, divided by the named activations.
- XC-purity: each X-feature is given its majority concept; sum over X-features of the largest
  concept share, divided by the named activations.
Both are purity in the sense of Manning et al. (2008), read from the concept x X-feature
contingency table. Undefined (NaN) when the annotator named nothing.

For a bundle explained with an aligned xNN, purity.csv adds ``xc_carried``: the XC-purity
against the concept each X-feature was trained to carry instead of its majority concept
(:mod:`analysis.measures.carried`); NaN otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from sklearn.metrics.cluster import contingency_matrix

from analysis.measures.carried import Carried, carried_purity
from analysis.measures.labels import CategoryNamings

__all__ = ["PURITY_COLUMNS", "cx_xc_purity", "purity_table"]

PURITY_COLUMNS = ["category", "annotator", "named", "cx_purity", "xc_purity", "xc_carried"]


def cx_xc_purity(concepts: np.ndarray, x_features: np.ndarray) -> tuple[float, float]:
    """CX- and XC-purity of named activations.

    Parameters
    ----------
    concepts
        The concept (any label type) of each named activation.
    x_features
        The X-feature of each of those activations.

    Returns
    -------
    (cx_purity, xc_purity)
        Floats in [0, 1]; NaN for no activations.
    """
    concepts = np.asarray(concepts)
    x_features = np.asarray(x_features)
    if concepts.shape != x_features.shape:
        raise ValueError(
            f"concepts and x_features differ in length: {concepts.shape} vs {x_features.shape}"
        )
    if concepts.size == 0:
        return float("nan"), float("nan")
    table = contingency_matrix(concepts, x_features)  # concepts x X-features
    n = concepts.size
    return float(table.max(axis=1).sum() / n), float(table.max(axis=0).sum() / n)


def purity_table(
    categories: Iterable[CategoryNamings], *, carried: Carried | None = None
) -> pd.DataFrame:
    """purity.csv: one row per category and annotator; ``carried``: the aligned xNN's concept
    per X-feature (see :data:`analysis.measures.carried.Carried`), for ``xc_carried``."""
    carried = carried or {}
    rows = []
    for cat in categories:
        for a, annotator in enumerate(cat.annotators):
            named = cat.labels[a] >= 0
            cx, xc = cx_xc_purity(cat.labels[a][named], cat.x_features[named])
            rows.append(
                {
                    "category": cat.category,
                    "annotator": annotator,
                    "named": int(named.sum()),
                    "cx_purity": cx,
                    "xc_purity": xc,
                    "xc_carried": (
                        carried_purity(cat, a, carried[cat.category])
                        if cat.category in carried
                        else float("nan")
                    ),
                }
            )
    return pd.DataFrame(rows, columns=PURITY_COLUMNS)
