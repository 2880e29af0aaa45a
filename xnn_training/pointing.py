"""The pointing game on toybirds: do the maps' maxima fall on the bird?

For each significant activation of a bundle, the maximum of its raw map is located and looked
up in the image's part mask (toybirds writes one per image, labels in ``toybirds.json``). A map
"hits" when its maximum lies on any bird part (label > 0, i.e. not the background). This is
the pointing game of Zhang et al. (2016) with the whole bird as the object.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from xnn_training.bundle import read_bundle
from xnn_training.datasets import open_dataset

__all__ = ["BACKGROUND", "pointing_game", "pointing_summary"]

BACKGROUND = "background"


def pointing_game(bundle: Path, data: Path) -> pd.DataFrame:
    """Where each significant map of ``bundle`` peaks, in the part masks of ``data``.

    Parameters
    ----------
    bundle
        A map bundle written by ``xnaming explain``.
    data
        The toybirds directory the bundle's images came from (its part masks are read).

    Returns
    -------
    pandas.DataFrame
        One row per activation: ``activation_id, image_id, category, x_feature, peak_x, peak_y``
        (the map's maximum as fractions of its width and height), ``part`` (the part label at
        that point, ``"background"`` off the bird) and ``inside`` (on the bird).
        :func:`pointing_summary` turns it into the accuracy and per-part fractions.

    Raises
    ------
    ValueError
        ``data`` has no part masks, or the bundle has images that ``data`` does not have.
    """
    content = read_bundle(Path(bundle))
    masks: dict[str, tuple] = {}
    for split in ("train", "test"):
        dataset = open_dataset(data, split)
        for index, sample in enumerate(dataset.samples):
            masks[sample.image_id] = (dataset, index)
    if not any(dataset.samples[i].mask_path for dataset, i in masks.values()):
        raise ValueError(f"data: {data} has no part masks (toybirds has them)")
    missing = sorted(set(content.images["image_id"]) - set(masks))
    if missing:
        raise ValueError(f"data: images {missing[:5]} of {bundle} are not in {data}")

    rows = []
    for activation in content.activations.itertuples(index=False):
        with np.load(content.root / activation.map_path) as stored:
            heat = stored["map"]
        y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
        # Fractions of the pixel centre, so maps and masks of different sizes line up.
        fx_, fy_ = (x + 0.5) / heat.shape[1], (y + 0.5) / heat.shape[0]
        dataset, index = masks[activation.image_id]
        mask = dataset.part_mask(index)
        label = int(mask[int(fy_ * mask.shape[0]), int(fx_ * mask.shape[1])])
        part = dataset.part_names.get(label, str(label))
        rows.append(
            {
                "activation_id": activation.activation_id,
                "image_id": activation.image_id,
                "category": activation.category,
                "x_feature": int(activation.x_feature),
                "peak_x": fx_,
                "peak_y": fy_,
                "part": part,
                "inside": label != 0,
            }
        )
    columns = ["activation_id", "image_id", "category", "x_feature", "peak_x", "peak_y"]
    return pd.DataFrame(rows, columns=[*columns, "part", "inside"])


def pointing_summary(game: pd.DataFrame) -> pd.DataFrame:
    """Per part, the fraction of maps peaking there, and the accuracy (``part = "bird"``).

    Parameters
    ----------
    game
        The table of :func:`pointing_game`.

    Returns
    -------
    pandas.DataFrame
        Rows ``part, maps, fraction``: one per part that some map peaks on (background
        included), sorted by fraction, then ``bird``: the maps on any bird part, i.e. the
        pointing-game accuracy.
    """
    total = len(game)
    counts = game["part"].value_counts().sort_values(ascending=False)
    rows = [
        {"part": part, "maps": int(n), "fraction": n / total if total else float("nan")}
        for part, n in counts.items()
    ]
    hits = int(game["inside"].sum())
    rows.append({"part": "bird", "maps": hits, "fraction": hits / total if total else np.nan})
    return pd.DataFrame(rows, columns=["part", "maps", "fraction"])
