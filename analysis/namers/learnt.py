"""An annotator's words for maps of new images, learnt from their namings of a bundle.

``xnaming why --namings NAMINGS.csv --bundle BUNDLE [--annotator NAME]`` names each map it
computes as that annotator (or the consensus of all, :func:`analysis.namers.verdicts.
concept_verdicts`) would, with the ML backend's per-annotator model
(:func:`ls_backend.backend.annotator_model.fit_annotator_model`: randomised trees from a map's
embedding and descriptors to what the annotator did with it). The model learns from the
bundle's named maps; a map is given its likeliest verdict, a concept or :data:`OTHER` (the
annotator would leave it unnamed or discard it).

The model sees only what a new image gives: the embedding's appearance and geometry columns
(the classifier's features under the hot spot, where the hot spot lies on the object) and the
map's descriptors. A bundle of a data set with part locations or masks holds the parts' shares
too; they are left out, since a new image has no part annotations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.measures.summaries import OTHER
from analysis.namers.verdicts import concept_verdicts
from label_config.tasks import DESCRIPTORS
from ls_backend.backend.annotator_model import AnnotatorModel, concept_of, fit_annotator_model
from xnn_training.bundle.embeddings import GEOMETRY, read_embeddings
from xnn_training.bundle.io import bundle_geometry, read_bundle
from xnn_training.maps.hot_spot import MAP_GEOMETRY

__all__ = ["LearntNamer", "descriptor_rows", "fit_learnt_namer"]

_UNNAMED = "unnamed"
_NAMED = "named"


@dataclass(frozen=True)
class LearntNamer:
    """Whose words, the embedding the model reads, and the model."""

    who: str
    """The annotator, or ``"consensus"``."""
    map_layer: str
    """The layer the bundle's maps were computed at: the maps to name must be too."""
    layers: tuple[str, ...]
    """The embedding layers (the appearance columns, in order)."""
    model: AnnotatorModel
    maps: int
    """How many maps it learnt from."""
    bundle: Path
    """The bundle those maps are of."""

    @property
    def concepts(self) -> list[str]:
        """The concepts it can say, sorted."""
        return sorted(c for c in map(concept_of, self.model.classes) if c is not None)

    def name(self, embeddings: np.ndarray, descriptors: np.ndarray) -> list[str]:
        """The verdict on each map: a concept, or ``other`` (unnamed or discarded).

        Parameters
        ----------
        embeddings
            (n, d): the maps' embeddings without part shares (appearance, then
            :data:`~xnn_training.bundle.embeddings.GEOMETRY`), as explain computes them.
        descriptors
            (n, len(DESCRIPTORS)): :func:`descriptor_rows` of the maps.
        """
        rows = np.concatenate([embeddings, descriptors], axis=1)
        if not len(rows):
            return []
        likeliest = self.model.probabilities(rows).argmax(axis=1)
        return [concept_of(self.model.classes[j]) or OTHER for j in likeliest]


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
        The map bundle the namings are of; it must hold map embeddings.
    annotator
        Whose verdicts; default: the consensus of every annotator in the table.
    dnn_weights
        The classifier's weights file: the bundle must have been explained for it.

    Raises
    ------
    ValueError
        In one line: a bundle without embeddings (re-explain it), for another classifier,
        namings of maps the bundle does not hold, an unknown annotator, or too few named maps
        (fewer than the backend's minimum, or a single verdict) to learn from.
    """
    content = read_bundle(Path(bundle))
    if dnn_weights is not None:
        content.check_explained_for(dnn_weights, fix="name maps of this --dnn's bundle")
    embeddings = read_embeddings(content)
    if embeddings is None:
        raise ValueError(
            f"bundle: {bundle} has no map embeddings, which the namer learns from; explain it "
            "again without --embedding-layers none"
        )
    table = content.namings_of(namings)
    verdicts = concept_verdicts(table, annotator)
    ids = list(verdicts.index)
    own = embeddings.blocks["geometry"].stop  # appearance and geometry: no part shares
    activations = content.activations.set_index("activation_id")
    geometry = bundle_geometry(content).set_index(content.activations["activation_id"])
    rows = np.concatenate(
        [
            embeddings.rows(ids)[:, :own],
            descriptor_rows(
                activations.loc[ids, "share"].astype(float).to_numpy(),
                activations.loc[ids, "rank"].astype(int).to_numpy(),
                geometry.loc[ids, list(MAP_GEOMETRY)].to_numpy(),
            ),
        ],
        axis=1,
    )
    labels = [f"{_NAMED}:{v}" if v else _UNNAMED for v in verdicts]
    model = fit_annotator_model(
        rows, labels, space=str(bundle), where=len(GEOMETRY) + len(DESCRIPTORS), parts=0
    )
    who = annotator or "consensus"
    if model is None:
        named = sum(bool(v) for v in verdicts)
        raise ValueError(
            f"namings: {who} named {named} of {len(ids)} maps of {bundle}: too few to learn "
            "their words from (at least 20 judged maps, some named)"
        )
    layer = str(content.manifest.get("layer", ""))
    return LearntNamer(who, layer, tuple(embeddings.layers), model, len(ids), Path(bundle))
