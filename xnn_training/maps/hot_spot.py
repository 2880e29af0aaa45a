"""The hot spot of an activation map: what lights up in the overlay an annotator sees.

Pixels at least :data:`HOT_SPOT` of a map's maximum form its hot spot; in the jet overlay
(:mod:`xnn_training.maps.overlay`) they are the yellow-to-red region. The ML backend describes maps
by it (``ls_backend.backend.naming.describe_map``) and the simulated annotators name what it covers
(:func:`xnn_training.maps.part_masks.heat_by_part`): an annotator names what lights up, while the
faint tail of an upsampled map would otherwise put most of the heat on the (large) background
of every image. Light (numpy only).
"""

from __future__ import annotations

import numpy as np

__all__ = ["HOT_SPOT", "hot_spot"]

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
