"""Overlay PNGs for annotators: an activation map as a jet heat map blended on its image.

As in the original pipeline (Qi et al.): min-max normalise, bicubic resize to the image, an
optional Gaussian blur (sigma = 0.02 * max(H, W)), jet colormap, blended on the image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
from PIL import Image
from scipy.ndimage import gaussian_filter

__all__ = ["display_map", "overlay", "save_overlay"]

BLUR_SIGMA = 0.02  # times the image's longer side, in pixels


def display_map(
    activation_map: np.ndarray | torch.Tensor, size: tuple[int, int], *, blur: bool = True
) -> np.ndarray:
    """A map made ready for display: values in [0, 1] at the image's size.

    Parameters
    ----------
    activation_map : array or tensor, shape (h, w)
        A raw map at any resolution (e.g. ``ActivationMaps.layer_maps[t]``).
    size : (width, height)
        The image's size, as PIL gives it.
    blur : bool, default True
        Smooth with a Gaussian of sigma ``0.02 * max(width, height)`` pixels.

    Returns
    -------
    np.ndarray of float32, shape (height, width)
        Min-max normalised, bicubic resized (clipped to [0, 1] and normalised again), optionally
        blurred and normalised again. A constant map (an inactive X-feature's zeros) gives all
        zeros.

    Raises
    ------
    ValueError
        If the map is not 2-D or holds NaN or infinity, or the size is not two positive ints.
    """
    values = _check_map(activation_map)
    width, height = _check_size(size)
    normalised = _min_max(values)
    resized = Image.fromarray(normalised.astype(np.float32)).resize(
        (width, height), Image.Resampling.BICUBIC
    )
    # Clipped (bicubic overshoots), then normalised again so that the peak is always 1.
    result = _min_max(np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0))
    if blur:
        result = _min_max(gaussian_filter(result, sigma=BLUR_SIGMA * max(width, height)))
    return result.astype(np.float32)


def overlay(
    image: Image.Image | np.ndarray,
    activation_map: np.ndarray | torch.Tensor,
    *,
    blur: bool = True,
    alpha: float = 0.5,
) -> Image.Image:
    """The image with the map as a jet heat map on top, at the image's size.

    Parameters
    ----------
    image : PIL image, or uint8 array of shape (H, W, 3) or (H, W)
        The image as the annotator sees it (not the network's normalised tensor).
    activation_map : array or tensor, shape (h, w)
        The raw map, at any resolution.
    blur : bool, default True
        See :func:`display_map`.
    alpha : float, default 0.5
        Weight of the heat map in the blend, in [0, 1].

    Returns
    -------
    PIL.Image.Image
        An RGB image of the image's size.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1] (the heat map's weight), got {alpha!r}")
    rgb = _check_image(image)
    heat = display_map(activation_map, rgb.size, blur=blur)
    colours = colormaps["jet"](heat)[..., :3]
    blended = (1.0 - alpha) * (np.asarray(rgb, dtype=np.float32) / 255.0) + alpha * colours
    return Image.fromarray(np.round(blended * 255.0).astype(np.uint8))


def save_overlay(
    path: str | Path,
    image: Image.Image | np.ndarray,
    activation_map: np.ndarray | torch.Tensor,
    *,
    blur: bool = True,
    alpha: float = 0.5,
) -> Path:
    """Write :func:`overlay` as a PNG (folders made as needed) and return its path.

    zlib level 1, as the bundle's images: PNG encoding at the default level was most of the
    time per map."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    overlay(image, activation_map, blur=blur, alpha=alpha).save(
        path, format="PNG", compress_level=1
    )
    return path


def _min_max(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros_like(values, dtype=np.float32)
    return ((values - low) / (high - low)).astype(np.float32)


def _check_map(activation_map: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(activation_map, torch.Tensor):
        activation_map = activation_map.detach().cpu().numpy()
    values = np.asarray(activation_map, dtype=np.float64)
    if values.ndim != 2 or values.size == 0:
        raise ValueError(
            f"activation_map must be a 2-D (h, w) map, got shape {values.shape}; take one map "
            "of a batch, e.g. maps.layer_maps[t]"
        )
    if not np.isfinite(values).all():
        raise ValueError("activation_map holds NaN or infinity; it cannot be displayed")
    return values


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    if len(size) != 2 or any(not isinstance(v, int | np.integer) or v < 1 for v in size):
        raise ValueError(f"size must be (width, height) in pixels, got {size!r}")
    return int(size[0]), int(size[1])


def _check_image(image: Image.Image | np.ndarray) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    array = np.asarray(image)
    if (
        array.dtype != np.uint8
        or array.ndim not in (2, 3)
        or (array.ndim == 3 and array.shape[2] != 3)
    ):
        raise ValueError(
            "image must be a PIL image or a uint8 array of shape (H, W, 3) or (H, W), got "
            f"{array.dtype} of shape {array.shape}"
        )
    return Image.fromarray(array).convert("RGB")
