"""Where a bundle's maps fall on the data set's part masks (toybirds writes one per image).

Both measures pair each significant map of a bundle with its image's part mask
(:func:`_maps_and_masks`, labels in ``toybirds.json``):

- :func:`pointing_game`: the maximum of each raw map is looked up in the mask; a map "hits"
  when it lies on any bird part (label > 0, not the background). This is the pointing game of
  Zhang et al. (2016) with the whole bird as the object.
- :func:`part_heat_table`: the share of each map's hot spot (:mod:`xnn_training.maps.hot_spot`,
  what lights up in the overlay) inside each part, which the simulated annotators
  (:mod:`analysis.namers.simulated_annotators`) name maps by. Explain measured them once into the
  bundle's map embeddings (the parts' mask shares) where it had the masks; they are read from
  there, and measured from the maps and masks only for a bundle without them.
- :func:`cue_pointing_game`: for a data set with a planted shortcut (``toybirds --shortcut``),
  whether the maps of the images that carry the cue peak on it. The part masks say background
  under the cue, so the simulated annotators see it as background.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from xnn_training.bundle.embeddings import ELSEWHERE, MASK_PREFIX, read_embeddings
from xnn_training.bundle.io import Bundle, read_bundle
from xnn_training.data.toybirds import PARTS
from xnn_training.maps.hot_spot import HOT_SPOT, hot_weights, part_shares

__all__ = [
    "BACKGROUND",
    "CUE_TOLERANCE",
    "PART_HEAT_COLUMNS",
    "cue_pointing_game",
    "heat_by_part",
    "part_heat_table",
    "pointing_game",
    "pointing_summary",
]

BACKGROUND = PARTS[0]
"""The part name of mask label 0: off the bird."""
PART_HEAT_COLUMNS = ("activation_id", "category", "part", "share", "wing_open")
CUE_TOLERANCE = 15 / 224
"""A peak this close to the cue (a fraction of the image side) is on it: the 15 pixels at 224
of Zhang et al.'s pointing game (4 pixels at toybirds' 64)."""


def _maps_and_masks(
    bundle: Path, data: Path, *, desc: str | None = None
) -> Iterator[tuple[object, np.ndarray, np.ndarray, dict[int, str]]]:
    """Each activation of ``bundle`` with its raw map, its image's part mask and part names.

    Raises
    ------
    ValueError
        ``data`` has no part masks, or the bundle has images that ``data`` does not have.
    """
    from xnn_training.data.datasets import (  # torch; only when maps are measured
        available_splits,
        open_dataset,
    )

    content = read_bundle(Path(bundle))
    masks: dict[str, tuple] = {}
    for split in available_splits(data):
        dataset = open_dataset(data, split)
        for index, sample in enumerate(dataset.samples):
            masks[sample.image_id] = (dataset, index)
    if not any(dataset.samples[i].mask_path for dataset, i in masks.values()):
        raise ValueError(f"data: {data} has no part masks (toybirds has them)")
    missing = sorted(set(content.images["image_id"]) - set(masks))
    if missing:
        raise ValueError(f"data: images {missing[:5]} of {bundle} are not in {data}")
    rows = content.activations.itertuples(index=False)
    if desc is not None:
        rows = tqdm(rows, total=len(content.activations), desc=desc, unit="map")
    for activation in rows:
        with np.load(content.root / activation.map_path) as stored:
            heat = stored["map"]
        dataset, index = masks[activation.image_id]
        yield activation, heat, dataset.part_mask(index), dataset.part_names


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
    rows = []
    for activation, heat, mask, part_names in _maps_and_masks(bundle, data):
        y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
        # Fractions of the pixel centre, so maps and masks of different sizes line up.
        fx_, fy_ = (x + 0.5) / heat.shape[1], (y + 0.5) / heat.shape[0]
        label = int(mask[int(fy_ * mask.shape[0]), int(fx_ * mask.shape[1])])
        part = part_names.get(label, str(label))
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


def heat_by_part(
    heat: np.ndarray,
    part_mask: np.ndarray,
    part_names: Mapping[int, str],
    *,
    hot: float = HOT_SPOT,
) -> dict[str, float]:
    """Share of a map's visible heat inside each part's mask.

    Parameters
    ----------
    heat
        The map (H x W, non-negative).
    part_mask
        Integer label image of the same size; labels missing from ``part_names`` count as
        background.
    part_names
        Label -> part name.
    hot
        Only the hot spot counts: pixels at least ``hot`` times the map's maximum (0: all of
        the heat).

    Returns
    -------
    dict
        Part name (and ``"background"``) -> share of the heat, summing to 1; all zeros for an
        all-zero map.
    """
    heat = np.asarray(heat, dtype=np.float64)
    if heat.shape != part_mask.shape:
        raise ValueError(f"map shape {heat.shape} differs from part mask shape {part_mask.shape}")
    if np.any(heat < 0) or not np.all(np.isfinite(heat)):
        raise ValueError("a map must be finite and non-negative")
    if not 0.0 <= hot < 1.0:
        raise ValueError(f"hot must be in [0, 1); got {hot}")
    import torch

    names = list(dict.fromkeys(name for name in part_names.values() if name != BACKGROUND))
    index_of = np.full(int(part_mask.max(initial=0)) + 1, len(names), dtype=np.int64)
    for label, name in part_names.items():
        if 0 <= label < len(index_of) and name != BACKGROUND:
            index_of[label] = names.index(name)
    regions = torch.from_numpy(index_of[np.asarray(part_mask, dtype=np.int64)])[None]
    weights = hot_weights(torch.from_numpy(heat)[None], level=hot)
    values = part_shares(weights, regions, len(names))[0].tolist()
    return {name: float(v) for name, v in zip([*names, BACKGROUND], values, strict=True)}


def part_heat_table(bundle: Path, data: Path) -> pd.DataFrame:
    """Where each map of a toybirds bundle shows its heat: one row per activation and part.

    Parameters
    ----------
    bundle
        A map bundle (``xnaming explain``) of toybirds images.
    data
        The toybirds data set the bundle was made from (its part masks and wing states).

    Returns
    -------
    pandas.DataFrame
        :data:`PART_HEAT_COLUMNS`: activation_id, category, part, share (of the map's visible
        heat, see :func:`heat_by_part`), wing_open (the image's wing state).

    Raises
    ------
    ValueError
        ``data`` is not a toybirds data set, or lacks images of the bundle.
    """
    data = Path(data)
    if not (data / "toybirds.json").is_file():
        raise ValueError(
            f"data: {data} is not a toybirds data set (toybirds.json is missing); simulated "
            "annotators need toybirds' part masks"
        )
    poses = pd.read_csv(data / "images.csv", dtype={"image_id": str}, keep_default_na=False)
    wing_open = dict(zip(poses["image_id"], poses["wing"] == "open", strict=True))
    measured = _measured_shares(read_bundle(Path(bundle)), data)
    if measured is not None:
        measured["wing_open"] = [bool(wing_open[i]) for i in measured.pop("image_id")]
        return measured.loc[:, list(PART_HEAT_COLUMNS)]
    rows = []
    for row, heat, mask, names in _maps_and_masks(bundle, data, desc="maps"):
        if heat.shape != mask.shape:  # maps are at the model's input size
            heat = np.asarray(
                Image.fromarray(heat.astype(np.float32), mode="F").resize(
                    mask.shape[::-1], Image.Resampling.BILINEAR
                )
            ).clip(min=0)
        bird = {label: name for label, name in names.items() if name != BACKGROUND}
        for part, share in heat_by_part(heat, mask, bird).items():
            rows.append(
                {
                    "activation_id": row.activation_id,
                    "category": row.category,
                    "part": part,
                    "share": share,
                    "wing_open": bool(wing_open[row.image_id]),
                }
            )
    return pd.DataFrame(rows, columns=list(PART_HEAT_COLUMNS))


def _measured_shares(content: Bundle, data: Path) -> pd.DataFrame | None:
    """The part heat table (with ``image_id`` for ``wing_open``) from the mask shares explain
    wrote into the bundle's map embeddings; None when it has none for every part of ``data``'s
    masks (a bundle without embeddings, or made without the masks)."""
    from xnn_training.data.datasets import open_dataset  # torch; only when maps are measured

    embeddings = read_embeddings(content)
    if embeddings is None or not embeddings.masks:
        return None
    names = open_dataset(data, "test").part_names
    bird = list(dict.fromkeys(name for name in names.values() if name != BACKGROUND))
    if set(bird) != set(embeddings.parts):
        return None
    column = {name: i for i, name in enumerate(embeddings.columns)}
    wanted = [column[f"{MASK_PREFIX}{name}"] for name in [*bird, ELSEWHERE]]
    activations = content.activations
    count = len(bird) + 1
    return pd.DataFrame(
        {
            "activation_id": np.repeat(activations["activation_id"].to_numpy(), count),
            "image_id": np.repeat(activations["image_id"].to_numpy(), count),
            "category": np.repeat(activations["category"].to_numpy(), count),
            "part": np.tile(np.asarray([*bird, BACKGROUND], dtype=object), len(activations)),
            "share": embeddings.values[:, wanted].astype(np.float64).ravel(),
        }
    )


def _cue_paths(data: Path) -> dict[str, Path]:
    """Image id -> its cue's mask, for the images of ``data`` that carry the planted cue."""
    images = pd.read_csv(data / "images.csv", dtype=str, keep_default_na=False)
    if "cue_path" not in images.columns:
        raise ValueError(
            f"data: {data} has no planted shortcut (images.csv has no cue_path column); make "
            "one with `xnaming data toybirds --shortcut CATEGORY`"
        )
    cued = images[images["cue_path"] != ""]
    return {i: data / p for i, p in zip(cued["image_id"], cued["cue_path"], strict=True)}


def cue_pointing_game(
    bundle: Path, data: Path, *, tolerance: float = CUE_TOLERANCE
) -> pd.DataFrame:
    """Whether each map of an image carrying the planted cue peaks on the cue.

    Parameters
    ----------
    bundle
        A map bundle of ``data``'s images.
    data
        A toybirds data set made with a shortcut (its ``cues/`` masks are read).
    tolerance
        A peak at most this far from the cue (a fraction of the image side) counts as on it.

    Returns
    -------
    pandas.DataFrame
        One row per map of a cued image: ``activation_id, image_id, category, x_feature``,
        ``distance`` (pixels from the peak to the nearest cue pixel, 0 inside) and ``on_cue``.

    Raises
    ------
    ValueError
        ``data`` has no planted shortcut, or lacks images of the bundle.
    """
    from scipy.ndimage import distance_transform_edt

    data = Path(data)
    cues = _cue_paths(data)
    rows = []
    for activation, heat, _mask, _names in _maps_and_masks(bundle, data):
        if activation.image_id not in cues:
            continue
        cue = np.asarray(Image.open(cues[activation.image_id])) > 0
        y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
        cy = int((y + 0.5) / heat.shape[0] * cue.shape[0])
        cx = int((x + 0.5) / heat.shape[1] * cue.shape[1])
        distance = float(distance_transform_edt(~cue)[cy, cx])
        rows.append(
            {
                "activation_id": activation.activation_id,
                "image_id": activation.image_id,
                "category": activation.category,
                "x_feature": int(activation.x_feature),
                "distance": distance,
                "on_cue": distance <= tolerance * max(cue.shape),
            }
        )
    columns = ["activation_id", "image_id", "category", "x_feature", "distance", "on_cue"]
    return pd.DataFrame(rows, columns=columns)
