"""Per-category statistics over annotator pairs: the paper's Table 5 and 6 layout.

For each category and measure: the number of pairs, min, mean, standard deviation (sample,
ddof = 1; NaN for a single pair) and max, ignoring pairs where the measure is undefined.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

__all__ = ["PAIR_SUMMARY_COLUMNS", "summarize_pairs"]

PAIR_SUMMARY_COLUMNS = ["category", "measure", "pairs", "min", "mean", "std", "max"]


def summarize_pairs(table: pd.DataFrame, measures: Sequence[str]) -> pd.DataFrame:
    """Min, mean, std and max of each measure over the pairs of each category.

    Parameters
    ----------
    table
        A pairwise table with a ``category`` column (agreement.csv, or compatibility.csv with
        measures already spread per d).
    measures
        The columns to summarise.
    """
    missing = [m for m in measures if m not in table.columns]
    if missing:
        raise ValueError(f"summarize_pairs: no column(s) {missing} in the table")
    rows = []
    for category, group in table.groupby("category", sort=True):
        for measure in measures:
            values = pd.to_numeric(group[measure], errors="coerce").dropna()
            rows.append(
                {
                    "category": category,
                    "measure": measure,
                    "pairs": len(values),
                    "min": values.min() if len(values) else float("nan"),
                    "mean": values.mean() if len(values) else float("nan"),
                    "std": values.std(ddof=1) if len(values) > 1 else float("nan"),
                    "max": values.max() if len(values) else float("nan"),
                }
            )
    return pd.DataFrame(rows, columns=PAIR_SUMMARY_COLUMNS)
