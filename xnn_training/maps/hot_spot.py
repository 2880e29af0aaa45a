"""The hot spot of an activation map and the map's geometry: the one place they are measured.

Pixels at least :data:`HOT_SPOT` of a map's maximum form its hot spot; in the jet overlay
(:mod:`xnn_training.maps.overlay`) they are the yellow-to-red region. An annotator names what
lights up, while the faint tail of an upsampled map would otherwise put most of the heat on the
(large) background of every image.

``xnaming explain`` measures every map here once and writes the result into the bundle:
:func:`map_geometry` into ``activations.csv`` (:data:`MAP_GEOMETRY`), and the hot spot's centre,
area, spread and part shares (:func:`hot_weights`, :func:`centre_and_spread`,
:func:`part_shares`) into the map embeddings (:mod:`xnn_training.maps.embed`). Publish, the ML
backend (through the task data), the simulated annotators and discover read them from the
bundle. Positions are fractions of the image's width and height at pixel centres,
``(i + 0.5) / n``.

The batched functions take torch tensors (imported on first use, so reading :data:`HOT_SPOT`
or :data:`MAP_GEOMETRY` stays light); :func:`describe_map` measures one numpy map.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch
    from torch import Tensor

__all__ = [
    "HOT_SPOT",
    "MAP_GEOMETRY",
    "centre_and_spread",
    "describe_map",
    "hot_area",
    "hot_mask",
    "hot_spot",
    "hot_weights",
    "map_geometry",
    "part_shares",
    "pixel_centres",
]

HOT_SPOT = 0.7
"""Fraction of a map's maximum at or above which a pixel belongs to its hot spot."""
MAP_GEOMETRY: tuple[str, ...] = (
    "heat_x",
    "heat_y",
    "hot_x",
    "hot_y",
    "hot_area",
    "hot_mass",
    "hot_spread",
    "heat_spread",
    "peak",
    "hot_regions",
)
"""A map's geometry as :func:`map_geometry` measures it and ``activations.csv`` holds it:
``heat_x``, ``heat_y``: the centre of its positive heat; ``hot_x``, ``hot_y``: the centre of its
hot spot (heat-weighted); ``hot_area``: the hot spot's share of the pixels; ``hot_mass``: the
share of the heat inside it; ``hot_spread``, ``heat_spread``: root-mean-square distance of the
hot spot's and of all heat from their centres (image fractions); ``peak``: maximum over mean;
``hot_regions``: the hot spot's connected pieces (4-connected). A map without positive heat is
centred (0.5) and empty (0)."""


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
    _check_level(level)
    heat = np.asarray(heat)
    if heat.size == 0:
        return np.zeros(heat.shape, dtype=bool)
    return heat >= level * heat.max()


def _check_level(level: float) -> None:
    if not 0.0 <= level < 1.0:
        raise ValueError(f"level must be in [0, 1); got {level}")


def pixel_centres(size: int, device: torch.device | None = None) -> Tensor:
    """The centres of ``size`` pixels (or cells) along a side, as fractions of it."""
    import torch

    return (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size


def hot_mask(heat: Tensor, *, level: float = HOT_SPOT) -> Tensor:
    """:func:`hot_spot` of each map of a batch, (n, H, W) bool; negative values count as 0."""
    _check_level(level)
    heat = heat.detach().float().clamp(min=0)
    return heat >= level * heat.flatten(1).amax(dim=1)[:, None, None]


def hot_area(heat: Tensor) -> Tensor:
    """Each map's hot spot's share of its pixels, (n,) (1 for a map without heat)."""
    return hot_mask(heat).flatten(1).float().mean(dim=1)


def hot_weights(heat: Tensor, *, level: float = HOT_SPOT, even_when_blank: bool = False) -> Tensor:
    """Each map's hot-spot heat as weights summing to 1, (n, H, W).

    Parameters
    ----------
    heat
        Maps, (n, H, W); negative values count as 0.
    level
        As in :func:`hot_spot`; 0 weights all the heat.
    even_when_blank
        A map without positive heat gets every pixel evenly (its hot spot is the whole image,
        as :func:`hot_spot` says: the embeddings' convention); otherwise all zeros.
    """
    heat = heat.detach().float().clamp(min=0)
    weights = heat * hot_mask(heat, level=level)
    blank = heat.flatten(1).amax(dim=1) <= 0
    if even_when_blank and blank.any():
        weights[blank] = 1.0
    total = weights.sum(dim=(1, 2), keepdim=True)
    return weights / total.clamp(min=1e-30)


def centre_and_spread(weights: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The centre (x, y) of weights summing to 1 per map, (n, H, W), and their root-mean-square
    distance from it; from the two marginals (cheaper than over every pixel)."""
    height, width = weights.shape[1:]
    across, down = weights.sum(dim=1), weights.sum(dim=2)  # (n, W), (n, H)
    xs, ys = pixel_centres(width, weights.device), pixel_centres(height, weights.device)
    cx, cy = across @ xs, down @ ys
    variance = (across * (xs[None] - cx[:, None]) ** 2).sum(1) + (
        down * (ys[None] - cy[:, None]) ** 2
    ).sum(1)
    return cx, cy, variance.clamp(min=0).sqrt()


def part_shares(weights: Tensor, regions: Tensor, count: int) -> Tensor:
    """(n, count + 1): each map's weights summed over the regions of its image, (n, H, W)
    integers in [0, count] (``count``: no region)."""
    import torch

    shares = torch.zeros(weights.shape[0], count + 1, device=weights.device)
    return shares.scatter_add_(1, regions.flatten(1), weights.flatten(1).float())


def map_geometry(heat: Tensor) -> Tensor:
    """The :data:`MAP_GEOMETRY` of each map, (n, len(MAP_GEOMETRY)) float32 on the CPU.

    Parameters
    ----------
    heat
        Maps, (n, H, W), on any device; negative values count as 0.
    """
    import torch
    from scipy import ndimage

    heat = heat.detach().float().clamp(min=0)
    flat = heat.flatten(1)
    total, peak = flat.sum(dim=1), flat.amax(dim=1)
    hot = hot_mask(heat)
    heat_x, heat_y, heat_spread = centre_and_spread(hot_weights(heat, level=0.0))
    hot_x, hot_y, hot_spread = centre_and_spread(hot_weights(heat))
    hot_mass = (heat * hot).flatten(1).sum(dim=1) / total.clamp(min=1e-30)
    peak = peak / (total / flat.shape[1]).clamp(min=1e-30)
    regions = [float(ndimage.label(m)[1]) for m in hot.cpu().numpy()]
    columns = [heat_x, heat_y, hot_x, hot_y, hot_area(heat), hot_mass, hot_spread, heat_spread]
    geometry = torch.stack([*columns, peak], dim=1).cpu()  # in MAP_GEOMETRY's order
    geometry = torch.cat([geometry, torch.tensor(regions).reshape(-1, 1)], dim=1)
    # No heat: centred (the first four columns) and empty.
    empty = (total <= 0).cpu()
    geometry[empty] = 0.0
    geometry[empty, :4] = 0.5
    return geometry


def describe_map(heat: np.ndarray) -> dict[str, float]:
    """The :data:`MAP_GEOMETRY` of one map (H x W; its negative part is ignored), by name.

    Raises
    ------
    ValueError
        Not a non-empty 2-d array, or not finite.
    """
    import torch

    heat = np.asarray(heat, dtype=np.float32)
    if heat.ndim != 2 or heat.size == 0:
        raise ValueError(f"a map must be a non-empty 2-d array, got shape {heat.shape}")
    if not np.isfinite(heat).all():
        raise ValueError("a map must be finite")
    values = map_geometry(torch.from_numpy(heat)[None])[0].tolist()
    return dict(zip(MAP_GEOMETRY, values, strict=True))
