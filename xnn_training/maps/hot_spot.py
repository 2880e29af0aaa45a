"""The hot spot of an activation map: what lights up in the overlay an annotator sees.

Pixels at least :data:`HOT_SPOT` of a map's maximum form its hot spot; in the jet overlay
(:mod:`xnn_training.maps.overlay`) they are the yellow-to-red region. The ML backend describes maps
by it (:func:`describe_map`) and the simulated annotators name what it covers
(:func:`xnn_training.maps.part_masks.heat_by_part`): an annotator names what lights up, while the
faint tail of an upsampled map would otherwise put most of the heat on the (large) background
of every image. Light (numpy only).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

__all__ = ["HOT_SPOT", "describe_map", "hot_spot"]

HOT_SPOT = 0.7
"""Fraction of a map's maximum at or above which a pixel belongs to its hot spot."""


def hot_spot(heat: np.ndarray, *, level: float = HOT_SPOT) -> np.ndarray:
    """The pixels of ``heat`` at least ``level`` times its maximum, as a boolean mask.

    Parameters
    ----------
    heat
        A map (H x W, non-negative).
    level
        In [0, 1); 0 keeps every pixel.

    Returns
    -------
    numpy.ndarray of bool
        Same shape as ``heat``; all True for an all-zero map (every pixel equals the maximum).
    """
    if not 0.0 <= level < 1.0:
        raise ValueError(f"level must be in [0, 1); got {level}")
    heat = np.asarray(heat)
    if heat.size == 0:
        return np.zeros(heat.shape, dtype=bool)
    return heat >= level * heat.max()


def describe_map(heat: np.ndarray) -> dict[str, float]:
    """Where a map fires and how focused it is: the backend's view of one activation map.

    Parameters
    ----------
    heat
        The raw map (H x W); its negative part is ignored.

    Returns
    -------
    dict
        ``heat_x``, ``heat_y``: centre of mass of the positive heat, as fractions of width and
        height; ``hot_area``: fraction of the pixels in the hot spot (:func:`hot_spot`);
        ``hot_mass``: share of the heat inside the hot spot; ``hot_spread``, ``heat_spread``:
        root-mean-square distance from the centre of the hot spot's and of all heat (in image
        fractions); ``peak``: maximum over mean; ``hot_regions``: connected pieces of the hot
        spot. An all-zero map gives a centred, empty description.
    """
    heat = np.clip(np.asarray(heat, dtype=np.float64), 0, None)
    if heat.ndim != 2 or heat.size == 0:
        raise ValueError(f"a map must be a non-empty 2-d array, got shape {heat.shape}")
    total = heat.sum()
    if not np.isfinite(total):
        raise ValueError("a map must be finite")
    if total <= 0:
        empty = dict.fromkeys(("hot_area", "hot_mass", "hot_spread", "heat_spread", "peak"), 0.0)
        return {"heat_x": 0.5, "heat_y": 0.5, **empty, "hot_regions": 0.0}
    rows, cols = np.indices(heat.shape)
    height, width = heat.shape
    # Fractions of the image, so maps of any size compare.
    xs, ys = cols / max(width - 1, 1), rows / max(height - 1, 1)
    hot = hot_spot(heat)
    hot_heat = np.where(hot, heat, 0.0)

    def centre_and_spread(weights: np.ndarray) -> tuple[float, float, float]:
        w = weights / weights.sum()
        cx, cy = (w * xs).sum(), (w * ys).sum()
        return cx, cy, math.sqrt((w * ((xs - cx) ** 2 + (ys - cy) ** 2)).sum())

    cx, cy, heat_spread = centre_and_spread(heat)
    hot_spread = centre_and_spread(hot_heat)[2]
    return {
        "heat_x": round(float(cx), 4),
        "heat_y": round(float(cy), 4),
        "hot_area": float(hot.mean()),
        "hot_mass": float(hot_heat.sum() / total),
        "hot_spread": float(hot_spread),
        "heat_spread": float(heat_spread),
        "peak": float(heat.max() / heat.mean()),
        "hot_regions": float(ndimage.label(hot)[1]),
    }
