"""What the annotators said about the feedback split's maps, as regions of its images.

:func:`feedback_regions` reads a namings table (``xnaming collect`` or ``xnaming simulate``) of
a map bundle of the data set's **feedback** split and turns each image's verdicts into two
masks at the image's size:

- ``rejected``: the hot spots of the maps most of their judges rejected, discarded or named
  with a background word (the distrust words of :mod:`analysis.measures.distrust`, one list
  for the report and the correction), less the named hot spots of the same image;
- ``named``: the hot spots of the maps most of their judges named with any other word (what
  the classifier should keep relying on).

A map's region is its hot spot (:func:`xnn_training.maps.hot_spot.hot_spot`, upsampled to the
image), the same region the bundle's geometry measures. The reader refuses, with one line, what
would make the correction measure on what it trained on or correct another classifier: a bundle
of another split than feedback, namings of activations the bundle does not hold, a bundle
explained for another classifier (both fingerprints named), and namings that reject nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from xnn_training.bundle.io import Bundle, read_bundle
from xnn_training.maps.hot_spot import HOT_SPOT, hot_spot

__all__ = ["FeedbackRegions", "feedback_regions", "read_feedback"]


@dataclass(frozen=True)
class FeedbackRegions:
    """Per feedback image (its id): boolean masks (H x W at ``size``) of what to stop relying on
    (``rejected``) and what to keep (``named``); only images with a rejected region are kept
    in ``rejected``."""

    size: int
    rejected: dict[str, np.ndarray]
    named: dict[str, np.ndarray]
    maps: int
    """How many rejected maps the regions come from."""
    distrusted: dict[str, float] = field(default_factory=dict)
    """Per category: the share of its feedback images whose decision rests mostly (by the
    maps' shares of the score) on rejected maps, as the report's decisions to distrust."""
    rejected_features: dict[str, list[int]] = field(default_factory=dict)
    """Per category: its X-features at least half of whose feedback maps were rejected (what
    the classifier looks at there, wherever it is on an image, is what the annotators reject)."""
    named_features: dict[str, list[int]] = field(default_factory=dict)
    """Per category: its X-features at least half of whose feedback maps were named with a word
    other than a background word (what to keep relying on)."""
    xnn_run: Path | None = None
    """The xNN run the bundle was explained with."""
    map_layer: str = ""
    """The bundle's map layer."""


REGION_LEVEL = 0.3
"""A rejected map's region: its pixels at least this fraction of its maximum, the whole lit
area. The hot spot (0.7, what annotators name) is too tight to take content away: on toybirds'
cue, the cue X-feature's hot spots covered 40% of the cue on average and never all of it; at
0.3 they covered all of it on every training image (docs/training.md)."""


def _lit(path: Path, size: int, level: float) -> np.ndarray:
    with np.load(path) as archive:
        heat = np.asarray(archive["map"], dtype=np.float32)
    if heat.max() <= 0:
        return np.zeros((size, size), dtype=bool)
    image = Image.fromarray(heat / heat.max()).resize((size, size), Image.Resampling.BILINEAR)
    return hot_spot(np.asarray(image), level=level)


def feedback_regions(
    namings: str | Path | pd.DataFrame,
    bundle: str | Path,
    *,
    dnn_weights: str | Path,
    size: int,
) -> FeedbackRegions:
    """Read the annotators' verdicts on a feedback bundle as image regions.

    Parameters
    ----------
    namings
        The tidy namings table (CSV path or DataFrame): annotator, activation_id, concept,
        status.
    bundle
        The map bundle the namings are of, made by ``xnaming explain --split feedback`` for the
        classifier being corrected.
    dnn_weights
        That classifier's ``weights.safetensors``: the bundle must have been explained for it.
    size
        The side of the classifier's input images; masks are made at this size.

    Raises
    ------
    ValueError
        The bundle is not of the feedback split, was made for another classifier, the namings
        name activations the bundle does not hold, or they reject no map ("nothing to correct").
    """
    from analysis.measures.distrust import DistrustWords  # one list for report and correction
    from label_config import DISCARDED, NAMED

    content, table = read_feedback(namings, bundle, dnn_weights=dnn_weights)
    activations = content.activations.set_index("activation_id")
    words = DistrustWords.from_file()
    named = table["status"] == NAMED
    background = named & table["concept"].map(lambda c: c in words)
    votes = (
        pd.DataFrame(
            {
                "activation_id": table["activation_id"],
                "rejected": (table["status"] == DISCARDED) | background,
                "named": named & ~background,
            }
        )
        .groupby("activation_id")[["rejected", "named"]]
        .sum()
    )
    rejected_ids = votes.index[(votes["rejected"] > 0) & (votes["rejected"] >= votes["named"])]
    named_ids = votes.index[votes["named"] > votes["rejected"]]
    if not len(rejected_ids):
        raise ValueError(
            "namings: no map is discarded or named with a background word, so there is "
            "nothing to correct; nothing written"
        )
    root = content.root

    def masks(ids, level: float) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for activation in ids:
            row = activations.loc[activation]
            spot = _lit(root / row["map_path"], size, level)
            image = row["image_id"]
            out[image] = out[image] | spot if image in out else spot
        return out

    kept = masks(named_ids, HOT_SPOT)
    rejected = {}
    for image, mask in masks(rejected_ids, REGION_LEVEL).items():
        region = mask & ~kept.get(image, np.zeros_like(mask))
        if region.any():
            rejected[image] = region
    if not rejected:
        raise ValueError(
            "namings: every rejected map lies inside a named one, so there is nothing to "
            "correct; nothing written"
        )
    judged = activations.assign(rejected=activations.index.isin(rejected_ids))
    share = judged["share"].astype(float) if "share" in judged else pd.Series(1.0, judged.index)
    evidence = (share * judged["rejected"]).groupby(judged["image_id"]).sum() / share.groupby(
        judged["image_id"]
    ).sum()
    category = judged.groupby("image_id")["category"].first()
    distrusted = (evidence >= 0.5).groupby(category).mean().to_dict()
    judged = judged.assign(named=judged.index.isin(named_ids))
    rate = judged.groupby(["category", "x_feature"])[["rejected", "named"]].mean()
    features: dict[str, list[int]] = {}
    keep: dict[str, list[int]] = {}
    for (name, feature), row in rate.iterrows():
        for chosen, share in ((features, row["rejected"]), (keep, row["named"])):
            if share >= 0.5:
                chosen.setdefault(str(name), []).append(int(feature))
    xnn = content.manifest.get("xnn_run") or {}
    return FeedbackRegions(
        size=size, rejected=rejected, named=kept, maps=len(rejected_ids),
        distrusted={str(c): float(v) for c, v in distrusted.items()},
        rejected_features=features,
        named_features=keep,
        xnn_run=(root / xnn["path"]).resolve() if xnn.get("path") else None,
        map_layer=str(content.manifest.get("layer", "")),
    )  # fmt: skip


def read_feedback(
    namings: str | Path | pd.DataFrame, bundle: str | Path, *, dnn_weights: str | Path
) -> tuple[Bundle, pd.DataFrame]:
    """The feedback bundle and its namings table, refused in one line when using them would
    measure on what was trained on or read another classifier's maps.

    Raises
    ------
    ValueError
        The bundle is not of the feedback split, was explained for another classifier (both
        fingerprints named), or the namings name activations the bundle does not hold.
    """
    content = read_bundle(Path(bundle))
    split = content.manifest.get("split")
    if split != "feedback":
        raise ValueError(
            f"bundle: {bundle} explains the {split!r} split, not feedback; training on its "
            "namings would measure on what it trained on: explain with --split feedback"
        )
    content.check_explained_for(dnn_weights, fix="explain the feedback split with this --dnn")
    return content, content.namings_of(namings, what="feedback bundle")
