"""The paper's cleaning step: concepts that cover too few images are dropped.

Per annotator and category, a concept covering fewer than ``min_images`` distinct images is
dropped and its activations count as unnamed (the paper removed "clusters with less than 3
images"). What was dropped is returned, so the report can say so.
"""

from __future__ import annotations

import pandas as pd

from analysis.defaults import MIN_IMAGES
from label_config import NAMED, UNNAMED

__all__ = ["DROPPED_COLUMNS", "drop_small_concepts"]

DROPPED_COLUMNS = ["category", "annotator", "concept", "activations", "images"]


def drop_small_concepts(
    namings: pd.DataFrame, activations: pd.DataFrame, *, min_images: int = MIN_IMAGES
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drop concepts covering fewer than ``min_images`` distinct images.

    Parameters
    ----------
    namings
        Checked tidy namings (see :func:`analysis.check_namings`).
    activations
        Checked activations table (gives each activation's image).
    min_images
        Smallest number of distinct images a concept must cover to be kept (0 or 1 keeps all).

    Returns
    -------
    (namings, dropped)
        The namings with the dropped concepts' rows set to ``unnamed`` (concept ""), and one
        row per dropped concept: category, annotator, concept, activations, images.
    """
    if isinstance(min_images, bool) or not isinstance(min_images, int) or min_images < 0:
        raise ValueError(f"min_images must be a non-negative integer, got {min_images!r}")
    image_of = dict(zip(activations["activation_id"], activations["image_id"], strict=True))
    named = namings[namings["status"] == NAMED]
    sizes = (
        named.assign(image_id=named["activation_id"].map(image_of))
        .groupby(["category", "annotator", "concept"], sort=True)
        .agg(activations=("activation_id", "size"), images=("image_id", "nunique"))
        .reset_index()
    )
    dropped = sizes[sizes["images"] < min_images].reset_index(drop=True)
    if dropped.empty:
        return namings, dropped.loc[:, DROPPED_COLUMNS]
    key = ["category", "annotator", "concept"]
    hit = (
        namings[key]
        .merge(dropped[key].assign(_drop=True), on=key, how="left")["_drop"]
        .fillna(False)
        .to_numpy(dtype=bool)
    )
    cleaned = namings.copy()
    cleaned.loc[hit & (cleaned["status"] == NAMED).to_numpy(), ["status", "concept"]] = [
        UNNAMED,
        "",
    ]
    return cleaned, dropped.loc[:, DROPPED_COLUMNS]
