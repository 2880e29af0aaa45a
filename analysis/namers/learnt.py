"""An annotator's words for maps of new images, learnt from their namings of a bundle.

``xnaming why --namings NAMINGS.csv --bundle BUNDLE [--annotator NAME]`` names each map it
computes as that annotator (or the consensus of all, :func:`analysis.namers.verdicts.
concept_verdicts`) would: a concept, or :data:`OTHER` (they would leave it unnamed or discard
it). The model (:mod:`analysis.namers.overlay_model`) reads what the annotator read: the map
over its image, pixel by pixel, and the map's descriptors (share, rank, geometry). It learns
from the bundle's judged maps, with a head for every annotator of the namings table (their
judgements of the same maps teach the shared trunk) and answers with the asked one's.

Learning takes minutes on a CPU (measured in docs/measurements.md), so a fitted namer is kept in
:func:`namer_cache` under a fingerprint of everything it learnt from (the bundle's manifest,
which holds every file's sha256, the verdicts of every annotator, the model's version and
settings); a later ``why`` with the same namings and bundle loads it in a second.

The model sees only what a new image gives. A bundle of a data set with part masks holds the
parts' shares of each map too; they are never read, since a new image has no part annotations.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from analysis.measures.summaries import OTHER
from analysis.namers import overlay_model
from analysis.namers.overlay_model import OverlayModel, fit_overlay_model, overlay_inputs
from analysis.namers.verdicts import concept_verdicts
from label_config.tasks import DESCRIPTORS
from ls_backend.backend.annotator_model import MIN_NAMINGS
from xnn_training.bundle.io import Bundle, bundle_geometry, read_bundle
from xnn_training.data.datasets import image_transform
from xnn_training.maps.hot_spot import MAP_GEOMETRY

__all__ = [
    "CONSENSUS", "LearntNamer", "descriptor_rows", "fit_learnt_namer", "namer_cache",
    "read_as_shown",
]  # fmt: skip

CONSENSUS = "consensus"
"""The namer's name for the consensus of every annotator of the namings table."""


@dataclass(frozen=True)
class LearntNamer:
    """Whose words, the model that speaks them, and what it learnt from."""

    who: str
    """The annotator, or :data:`CONSENSUS`."""
    map_layer: str
    """The layer the bundle's maps were computed at: the maps to name must be too."""
    model: OverlayModel
    maps: int
    """How many maps ``who`` judged in the bundle."""
    bundle: Path
    """The bundle those maps are of."""

    @property
    def concepts(self) -> list[str]:
        """The concepts it can say, sorted."""
        return [c for c in self.model.vocabularies[self.who] if c]

    def name(self, images: torch.Tensor, heat: torch.Tensor, descriptors: np.ndarray) -> list[str]:
        """The verdict on each map: a concept, or ``other`` (unnamed or discarded).

        Parameters
        ----------
        images
            (n, 3, H, W): each map's image as the annotator saw it, :func:`read_as_shown` at
            the maps' side. The model learnt from those copies; the original file, sharper,
            reads otherwise.
        heat
            (n, H, W): the maps at the images' size.
        descriptors
            (n, len(DESCRIPTORS)): :func:`descriptor_rows` of the maps.
        """
        if not len(heat):
            return []
        probabilities = self.model.probabilities(
            self.who, overlay_inputs(images, heat), descriptors
        )
        said = [self.model.vocabularies[self.who][j] for j in probabilities.argmax(axis=1)]
        return [concept or OTHER for concept in said]


def descriptor_rows(
    shares: Sequence[float], ranks: Sequence[int], geometry: np.ndarray
) -> np.ndarray:
    """(n, len(DESCRIPTORS)) in :data:`~label_config.tasks.DESCRIPTORS` order, from each map's
    share of the score, its rank and its :data:`~xnn_training.maps.hot_spot.MAP_GEOMETRY` row."""
    geometry = np.asarray(geometry, dtype=np.float32).reshape(len(shares), len(MAP_GEOMETRY))
    by_name = {name: geometry[:, i] for i, name in enumerate(MAP_GEOMETRY)}
    by_name["share"] = np.asarray(shares, dtype=np.float32)
    by_name["rank"] = np.asarray(ranks, dtype=np.float32)
    return np.stack([by_name[name] for name in DESCRIPTORS], axis=1).astype(np.float32)


def fit_learnt_namer(
    namings: str | Path | pd.DataFrame,
    bundle: str | Path,
    *,
    annotator: str | None = None,
    dnn_weights: str | Path | None = None,
) -> LearntNamer:
    """Learn one annotator's (or the consensus') verdicts from their namings of ``bundle``.

    Parameters
    ----------
    namings
        A namings table (docs/formats.md) of the bundle's maps, or its CSV.
    bundle
        The map bundle the namings are of.
    annotator
        Whose verdicts; default: the consensus of every annotator in the table.
    dnn_weights
        The classifier's weights file: the bundle must have been explained for it.

    Raises
    ------
    ValueError
        In one line: not a bundle, a bundle for another classifier, namings of maps the bundle
        does not hold, an unknown annotator, or too few judged maps (fewer than
        :data:`~ls_backend.backend.annotator_model.MIN_NAMINGS`, or none named) to learn from.
    """
    content = read_bundle(Path(bundle))
    if dnn_weights is not None:
        content.check_explained_for(dnn_weights, fix="name maps of this --dnn's bundle")
    table = content.namings_of(namings)
    who = annotator or CONSENSUS
    verdicts = {a: concept_verdicts(table, a) for a in sorted(set(table["annotator"]) - {""})}
    verdicts[who] = concept_verdicts(table, annotator)  # refuses an unknown annotator
    mine = verdicts[who]
    if len(mine) < MIN_NAMINGS or not (mine != "").any():
        raise ValueError(
            f"namings: {who} named {int((mine != '').sum())} of {len(mine)} maps of {bundle}: "
            f"too few to learn their words from (at least {MIN_NAMINGS} judged maps, some named)"
        )
    ids = sorted(set().union(*(v.index for v in verdicts.values())))
    said = {a: [v.get(i) for i in ids] for a, v in verdicts.items()}
    kept = namer_cache() / f"{_fingerprint(content.manifest, ids, said)}.pt"
    model = _load_kept(kept)
    if model is None:
        inputs, descriptors = _named_maps(content, ids)
        model = fit_overlay_model(
            inputs, descriptors, said, members=overlay_model.MEMBERS,
            epochs=overlay_model.EPOCHS, progress=f"learning {who}'s words",
        )  # fmt: skip
        _keep(model, kept)
    layer = str(content.manifest.get("layer", ""))
    return LearntNamer(who, layer, model, len(mine), Path(bundle))


def namer_cache() -> Path:
    """Where fitted namers are kept: ``$XNAMING_CACHE/namers``, else
    ``$XDG_CACHE_HOME/xnaming/namers``, else ``~/.cache/xnaming/namers``. Delete it at will:
    a namer not found there is learnt again."""
    root = os.environ.get("XNAMING_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "xnaming"
    )
    return Path(root) / "namers"


def _fingerprint(
    manifest: Mapping, ids: Sequence[str], said: Mapping[str, Sequence[str | None]]
) -> str:
    """sha256 of all a fitted namer depends on: another bundle, verdict, model or setting is
    another namer. Whose words is not in it: every annotator's head is in the same model, so
    the namer of one annotator of a namings table is every other's (the consensus adds a
    head: another model)."""
    settings = [overlay_model.VERSION, overlay_model.MEMBERS, overlay_model.EPOCHS,
                overlay_model.NAMER_SIDE]  # fmt: skip
    text = json.dumps([settings, manifest, list(ids), dict(said)], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _load_kept(path: Path) -> OverlayModel | None:
    """The namer kept at ``path``; None when there is none or it cannot be read (then it is
    learnt again and the file replaced)."""
    if not path.is_file():
        return None
    try:
        return OverlayModel.from_state(torch.load(path, weights_only=True))
    except Exception as error:
        print(
            f"xnaming: {path}: unreadable kept namer ({error}); learning it again", file=sys.stderr
        )
        return None


def _keep(model: OverlayModel, path: Path) -> None:
    """Save ``model`` at ``path`` (written aside, then moved in: never half a file); a cache
    that cannot be written costs only the next refit."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.partial")
        torch.save(model.state(), partial)
        os.replace(partial, path)
    except OSError as error:
        print(f"xnaming: cannot keep the fitted namer in {path.parent} ({error}); set "
              "XNAMING_CACHE to a writable folder to reuse it", file=sys.stderr)  # fmt: skip


def read_as_shown(shown: Image.Image, side: int) -> torch.Tensor:
    """(3, side, side): the image the annotator saw (the bundle's display copy, or
    :func:`~xnn_training.maps.explain.display_image` of a new file) as the namer reads it, in
    training and in ``why`` alike."""
    return image_transform(side)(shown.convert("RGB"))


def _named_maps(content: Bundle, ids: Sequence[str]) -> tuple[torch.Tensor, np.ndarray]:
    """The model's inputs and descriptors of the bundle's maps ``ids``: each map over its image
    as the classifier read it (the bundle's copy brought back to the maps' size)."""
    activations = content.activations.set_index("activation_id").loc[list(ids)]
    geometry = bundle_geometry(content).set_index(content.activations["activation_id"])
    heat = []
    for path in activations["map_path"]:
        with np.load(content.root / path, allow_pickle=False) as arrays:
            heat.append(torch.from_numpy(np.asarray(arrays["map"], dtype=np.float32)))
    heat_ = torch.stack(heat)
    read: dict[str, torch.Tensor] = {}
    for path in activations["image_path"].unique():
        with Image.open(content.root / path) as image:
            read[path] = read_as_shown(image, heat_.shape[-1])
    images = torch.stack([read[p] for p in activations["image_path"]])
    descriptors = descriptor_rows(
        activations["share"].astype(float).to_numpy(),
        activations["rank"].astype(int).to_numpy(),
        geometry.loc[list(ids), list(MAP_GEOMETRY)].to_numpy(),
    )
    return overlay_inputs(images, heat_), descriptors
