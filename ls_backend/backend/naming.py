"""What the ML backend knows of maps and namings, and the model's input rows.

A map is what the task data carries (``docs/formats.md``; read by
:func:`label_config.tasks.maps_of_task`, re-exported here with :class:`MapInfo`,
:data:`DESCRIPTORS` and the embedding codec): its category, its X-feature, the centre of its
heat, a few numbers on how strong and how focused it is and, for a bundle with map embeddings,
its embedding, which :func:`features_of` turns into the input of the per-annotator model
(:mod:`ls_backend.backend.annotator_model`). A :class:`Naming` is what an annotator did with one.

The older proposal for tasks without embeddings lives in :mod:`ls_backend.backend.heat_proposal`,
the drag metric in :mod:`ls_backend.backend.moves`; their names stay importable from here.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from label_config.tasks import (
    DESCRIPTORS,
    MapInfo,
    decode_embedding,
    encode_embedding,
    maps_of_task,
)
from xnn_training.bundle.embeddings import GEOMETRY
from xnn_training.maps.hot_spot import describe_map

__all__ = [
    "DESCRIPTORS",
    "MapInfo",
    "Naming",
    "decode_embedding",
    "describe_map",
    "encode_embedding",
    "features_of",
    "maps_of_task",
    "off_parts",
    "part_columns",
    "where_columns",
]

# Names that moved out, still importable from here: name -> its module.
_MOVED = {
    "NEAR": "heat_proposal",
    "board_prediction": "heat_proposal",
    "board_proposal": "heat_proposal",
    "fit_status_guess": "heat_proposal",
    "per_map_proposal": "heat_proposal",
    "moves_needed": "moves",
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:  # imported on use: heat_proposal imports Naming from here
        return getattr(importlib.import_module(f"ls_backend.backend.{_MOVED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class Naming:
    """What an annotator did with one map."""

    map: MapInfo
    concept: str
    status: str  # label_config's NAMED | UNNAMED | DISCARDED


def features_of(maps: Sequence[MapInfo]) -> np.ndarray:
    """The annotator model's input rows: each map's embedding, then its descriptors (the
    hot spot's place, area and spread are the embedding's: :data:`DESCRIPTORS` leaves them out).

    Maps without descriptors get zeros there, as do maps stored with the descriptors of an
    older version (another count); every map must have an embedding.
    """
    rows = []
    for m in maps:
        if m.embedding is None:
            raise ValueError(f"map {m.activation_id} has no embedding")
        looks = m.descriptors
        if looks is None or len(looks) != len(DESCRIPTORS):
            looks = (0.0,) * len(DESCRIPTORS)
        rows.append(np.concatenate([m.embedding, np.asarray(looks, dtype=np.float32)]))
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    if len({len(r) for r in rows}) != 1:
        raise ValueError("the maps' embeddings differ in length")
    return np.stack(rows).astype(np.float32)


def where_columns(maps: Sequence[MapInfo]) -> int:
    """The trailing columns of the :func:`features_of` rows of ``maps`` (one embedding space)
    that say where each hot spot lies and how focused it is: the embedding's where columns,
    then the descriptors."""
    where = maps[0].where if maps and maps[0].where is not None else len(GEOMETRY)
    return where + len(DESCRIPTORS)


def part_columns(maps: Sequence[MapInfo]) -> int:
    """How many of the :func:`where_columns` of ``maps`` (one embedding space) are the parts'
    shares of the hot spot: 0 for a data set that locates no parts (or an older bundle)."""
    return maps[0].where - len(GEOMETRY) if maps and maps[0].where is not None else 0


def off_parts(maps: Sequence[MapInfo]) -> np.ndarray | None:
    """Each map's share of its hot spot off every located part: the embedding's last column,
    ``part@mask:elsewhere`` (off every part's mask) where the data set has part masks, else
    ``part@0.05:elsewhere`` (farther than the tightest radius from every part's location).
    ``None`` when the maps carry no part shares."""
    if not part_columns(maps):
        return None
    return np.array([m.embedding[-1] for m in maps], dtype=np.float64)
