"""The paper's Table 1, computed once: per category, images, significant activations, accuracies.

Hamidi-Haines et al. (2018), Table 1: for each explained category, the number of images, the
total and mean number of significant activations per image, the DNN's and the xNN's accuracy,
and the xNN's RMSE against the DNN's logit. ``xnaming explain`` writes it as the bundle's
``summary.csv`` from ``images.csv``; ``xnaming train xnn``'s fidelity report
(:mod:`xnn_training.training.fidelity`) takes its accuracy and significance columns from it.
Pandas only (no torch), so the bundle's readers can use it too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["PER_IMAGE_COLUMNS", "TABLE_ONE_COLUMNS", "table_one"]

TABLE_ONE_COLUMNS = (
    "category",
    "images",
    "activations",
    "mean_per_image",
    "dnn_accuracy",
    "xnn_accuracy",
    "xnn_rmse",
)
"""The columns of ``summary.csv`` (docs/formats.md)."""
PER_IMAGE_COLUMNS = ("category", "true_category", "prediction", "n_significant")
"""What :func:`table_one` needs of each image (``images.csv`` has them); ``xnn_prediction``,
``score`` and ``dnn_logit`` give the xNN columns and are optional."""
OVERALL = "overall"


def table_one(
    images: pd.DataFrame | None, *, categories: Sequence[str] | None = None
) -> pd.DataFrame:
    """The paper's Table 1 from one row per explained image.

    Parameters
    ----------
    images
        A bundle's ``images.csv`` (or a table with its columns): ``category`` (the explained
        class), ``true_category``, ``prediction`` (the DNN's), ``n_significant``; optionally
        ``xnn_prediction`` (the DNN's prediction with the explained classes' logits replaced
        by their xNN scores), ``score`` (the xNN's score of the explained class) and
        ``dnn_logit`` (the DNN's logit of that class). ``None`` or empty: no rows.
    categories
        The categories to report, in this order (those without images get 0 images and NaN
        means); default: those of ``images``, sorted.

    Returns
    -------
    pandas.DataFrame
        :data:`TABLE_ONE_COLUMNS`, one row per category, then ``overall`` (all images
        pooled). ``dnn_accuracy``, ``xnn_accuracy``: fraction of images whose prediction is
        the true class; ``xnn_rmse``: root mean squared difference between ``score`` and
        ``dnn_logit`` over the category's images; NaN where the optional columns are absent.

    Raises
    ------
    ValueError
        A required column is missing.
    """
    if images is None or images.empty:
        return pd.DataFrame(columns=list(TABLE_ONE_COLUMNS))
    missing = [column for column in PER_IMAGE_COLUMNS if column not in images.columns]
    if missing:
        raise ValueError(
            f"images: Table 1 needs the columns {missing} (those of a bundle's images.csv)"
        )
    text = images["category"].astype(str)
    truth = images["true_category"].astype(str)
    xnn = _optional(images, "xnn_prediction")
    score, logit = _optional(images, "score"), _optional(images, "dnn_logit")
    table = pd.DataFrame(
        {
            "category": text,
            "n_significant": images["n_significant"].astype(int),
            "dnn_right": images["prediction"].astype(str) == truth,
            "xnn_right": (xnn.astype(str) == truth).where(xnn.notna()),
            "squared": (score.astype(float) - logit.astype(float)) ** 2,
        }
    )
    wanted = sorted(set(text)) if categories is None else [str(c) for c in categories]
    groups = dict(list(table.groupby("category", sort=False)))
    rows = [_row(name, groups.get(name, table.iloc[:0])) for name in wanted]
    rows.append(_row(OVERALL, table))
    return pd.DataFrame(rows, columns=list(TABLE_ONE_COLUMNS))


def _optional(images: pd.DataFrame, column: str) -> pd.Series:
    """An optional column, NaN where absent or empty (images.csv leaves unknown values empty)."""
    if column not in images.columns:
        return pd.Series(np.nan, index=images.index, dtype=object)
    values = images[column]
    return values.where(values.notna() & (values.astype(str) != ""))


def _row(name: str, group: pd.DataFrame) -> dict:
    if group.empty:
        return {"category": name, "images": 0, "activations": 0} | dict.fromkeys(
            TABLE_ONE_COLUMNS[3:], np.nan
        )
    return {
        "category": name,
        "images": len(group),
        "activations": int(group["n_significant"].sum()),
        "mean_per_image": float(group["n_significant"].mean()),
        "dnn_accuracy": float(group["dnn_right"].mean()),
        "xnn_accuracy": float(group["xnn_right"].astype(float).mean()),
        "xnn_rmse": float(np.sqrt(group["squared"].astype(float).mean())),
    }
