"""The task data of Label Studio tasks: the one place that writes and reads it.

``xnaming publish`` writes it (:func:`board_task`, :func:`per_map_task`), the ML backend reads
the maps it holds (:func:`maps_of_task`), the export reader and ``xnaming status`` read its
activation ids (:func:`activation_ids`); every key is a constant here, and which kind a task is
is decided in one place (:func:`task_kind`). ``docs/formats.md`` ("Label Studio tasks and
results") documents the fields.

A map, as the task data carries it: its activation, category and X-feature, the centre of its
heat (``heat_x``, ``heat_y`` in [0, 1]), how strong and focused it is (:data:`DESCRIPTORS`,
measured once at explain: :mod:`xnn_training.maps.hot_spot`) and, for a bundle with map
embeddings, its embedding (:func:`encode_embedding`).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xnn_training.bundle.embeddings import GEOMETRY
from xnn_training.maps.hot_spot import MAP_GEOMETRY

__all__ = [
    "ACTIVATION_ID",
    "ANNOTATOR",
    "ANNOTATOR_ID",
    "BOARD",
    "CATEGORY",
    "DESCRIPTORS",
    "EMBEDDING",
    "EMBEDDING_SPACE",
    "EMBEDDING_WHERE",
    "HEAT_X",
    "HEAT_Y",
    "MAPS",
    "PER_MAP",
    "MapInfo",
    "activation_ids",
    "board_task",
    "decode_embedding",
    "encode_embedding",
    "map_entries",
    "map_fields",
    "maps_of_task",
    "owner_fields",
    "per_map_task",
    "task_key",
    "task_kind",
]

# The keys of the task data (docs/formats.md).
ANNOTATOR = "annotator"
ANNOTATOR_ID = "annotator_id"
CATEGORY = "category"
EMBEDDING_SPACE = "embedding_space"
EMBEDDING_WHERE = "embedding_where"
ITEMS = "items"
"""A board's thumbnails, in the ranker's format: ``{"id": activation id, "html": ...}``."""
ITEM_ID = "id"
ITEM_HTML = "html"
MAPS = "activations"
"""A board's maps: one entry of map fields each."""
ACTIVATION_ID = "activation_id"
IMAGE_ID = "image_id"
X_FEATURE = "x_feature"
HEAT_X = "heat_x"
HEAT_Y = "heat_y"
DESCRIPTORS_KEY = "descriptors"
EMBEDDING = "embedding"
OVERLAY = "overlay"
IMAGE = "image"

BOARD = "board"
PER_MAP = "per-map"
"""The two kinds of task (:func:`task_kind`), named as the labeling configs' modes."""

SHARE = "share"
RANK = "rank"
DESCRIPTORS: tuple[str, ...] = (
    SHARE,
    RANK,
    *(name for name in MAP_GEOMETRY if name not in (HEAT_X, HEAT_Y) and name not in GEOMETRY),
)
"""What the backend knows of a map's look, in task data under ``descriptors``: the X-feature's
share of the image's positive score and its rank among the image's significant X-features,
then how strong and focused its heat is (``hot_mass``, ``heat_spread``, ``peak``,
``hot_regions``: the bundle's geometry, :data:`xnn_training.maps.hot_spot.MAP_GEOMETRY`). The
hot spot's place, area and spread are not among them: the map embedding carries them
(:data:`xnn_training.bundle.embeddings.GEOMETRY`, the same numbers), and the annotator model
must not see them twice."""


@dataclass(frozen=True)
class MapInfo:
    """One activation map as the backend sees it."""

    activation_id: str
    category: str
    x_feature: int
    heat: tuple[float, float] | None = None
    descriptors: tuple[float, ...] | None = None
    """Values of :data:`DESCRIPTORS`, in that order; ``None`` when the task data lacks them."""
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)
    """float32 map embedding (``xnn_training.bundle.embeddings``); ``None`` for an older bundle."""
    space: str | None = None
    """The embedding space: embeddings compare only within one (same network and layers)."""
    where: int | None = None
    """How many trailing embedding columns say where the hot spot lies (the geometry, then the
    parts' shares when the data set located parts: ``embedding_where`` of the task data);
    ``None``: the geometry alone (a bundle made before parts were embedded)."""


def owner_fields(
    annotator: str,
    annotator_id: int | None = None,
    *,
    space: str | None = None,
    where: int | None = None,
) -> dict[str, Any]:
    """The fields every task of one annotator's project carries: whose it is (their e-mail and
    Label Studio user id: the backend learns from their own annotations only) and, for a bundle
    with map embeddings, the embeddings' space and how many trailing columns say where."""
    fields: dict[str, Any] = {ANNOTATOR: str(annotator)}
    if annotator_id is not None:
        fields[ANNOTATOR_ID] = int(annotator_id)
    if space is not None:
        fields[EMBEDDING_SPACE] = str(space)
        if where is not None:
            fields[EMBEDDING_WHERE] = int(where)
    return fields


def map_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """One map's fields of task data, from its bundle row.

    Parameters
    ----------
    values
        The map's ``activations.csv`` values by column: ``activation_id``, ``image_id``,
        ``x_feature``, ``share``, ``rank``, its geometry
        (:data:`xnn_training.maps.hot_spot.MAP_GEOMETRY`) and, when the bundle has map
        embeddings, ``embedding`` (:func:`encode_embedding` of its row; ``None``: none).
    """
    fields = {
        ACTIVATION_ID: str(values[ACTIVATION_ID]),
        IMAGE_ID: str(values[IMAGE_ID]),
        X_FEATURE: int(values[X_FEATURE]),
        HEAT_X: round(float(values[HEAT_X]), 4),
        HEAT_Y: round(float(values[HEAT_Y]), 4),
        DESCRIPTORS_KEY: {name: round(float(values[name]), 5) for name in DESCRIPTORS},
    }
    embedding = values.get(EMBEDDING)
    if isinstance(embedding, str):
        fields[EMBEDDING] = embedding
    return fields


def board_task(
    category: str,
    maps: Sequence[Mapping[str, Any]],
    thumbnails: Sequence[str],
    *,
    owner: Mapping[str, Any],
) -> dict[str, Any]:
    """A board task's data: one category's maps (:func:`map_fields`), each with its thumbnail
    (the HTML the ranker shows, in the same order), and the :func:`owner_fields`."""
    if len(thumbnails) != len(maps):
        raise ValueError(f"board {category!r}: {len(maps)} maps, {len(thumbnails)} thumbnails")
    items = [
        {ITEM_ID: m[ACTIVATION_ID], ITEM_HTML: html}
        for m, html in zip(maps, thumbnails, strict=True)
    ]
    return {CATEGORY: str(category), **owner, ITEMS: items, MAPS: [dict(m) for m in maps]}


def per_map_task(
    map_: Mapping[str, Any],
    *,
    category: str,
    overlay: str,
    image: str,
    owner: Mapping[str, Any],
) -> dict[str, Any]:
    """A per-map task's data: the map's fields (:func:`map_fields`), its category, the URLs of
    its overlay and image, and the :func:`owner_fields`."""
    return {**owner, CATEGORY: str(category), **map_, OVERLAY: overlay, IMAGE: image}


def task_kind(data: Mapping) -> str:
    """:data:`BOARD` or :data:`PER_MAP`: which kind of task ``data`` is.

    Raises
    ------
    ValueError
        ``data`` is not an object, or neither kind (a task not made by ``xnaming publish``).
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"task data must be an object, got {type(data).__name__}")
    if MAPS in data or ITEMS in data:
        return BOARD
    if ACTIVATION_ID in data:
        return PER_MAP
    raise ValueError(
        f"task data has neither {ITEMS!r} and {MAPS!r} (board) nor {ACTIVATION_ID!r} (per map); "
        "was the task made by xnaming publish?"
    )


def task_key(data: Mapping) -> str:
    """What identifies a task within its project: its activation id, or ``board:<category>``."""
    if task_kind(data) == PER_MAP:
        return str(data[ACTIVATION_ID])
    return f"board:{data[CATEGORY]}"


def map_entries(data: Mapping) -> list[tuple[str, Any]]:
    """Each map's fields of a task, with where they lie (``data.activations[i]``, ``data``).

    A board's map list must be a list; its entries are returned as they are (unchecked).
    """
    if task_kind(data) == PER_MAP:
        return [("data", data)]
    entries = data[MAPS]
    if not isinstance(entries, list):
        raise ValueError(f"task data {MAPS!r} must be a list")
    return [(f"data.{MAPS}[{i}]", entry) for i, entry in enumerate(entries)]


def activation_ids(data: Mapping) -> list[str]:
    """The activation ids of a task's maps, in its order (a board's from its thumbnails)."""
    if task_kind(data) == PER_MAP:
        return [str(data[ACTIVATION_ID])]
    if ITEMS in data:
        return [str(item[ITEM_ID]) for item in data[ITEMS]]
    return [str(entry[ACTIVATION_ID]) for _, entry in map_entries(data)]


def encode_embedding(values: np.ndarray) -> str:
    """A map embedding as task data carries it: base64 of its little-endian float32 bytes."""
    return base64.b64encode(np.asarray(values, dtype="<f4").tobytes()).decode("ascii")


def decode_embedding(text: str) -> np.ndarray:
    """The inverse of :func:`encode_embedding`.

    Raises
    ------
    ValueError
        Not base64 of float32 values, or values that are not finite.
    """
    if not isinstance(text, str):
        raise ValueError(f"{EMBEDDING!r} must be a base64 string, got {type(text).__name__}")
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise ValueError(f"{EMBEDDING!r} is not base64") from None
    if not raw or len(raw) % 4:
        raise ValueError(f"{EMBEDDING!r} holds {len(raw)} bytes, not float32 values")
    values = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if not np.isfinite(values).all():
        raise ValueError(f"{EMBEDDING!r} holds values that are not finite")
    return values


def maps_of_task(data: Mapping) -> list[MapInfo]:
    """The maps of a board or per-map task, from its data.

    Raises
    ------
    ValueError
        When the task data lacks what ``docs/formats.md`` requires.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"task data must be an object, got {type(data).__name__}")
    try:
        category = str(data[CATEGORY])
        space = data.get(EMBEDDING_SPACE)
        space = None if space is None else str(space)
        where = _where(data.get(EMBEDDING_WHERE))
        if MAPS in data:
            entries = data[MAPS]
            if not isinstance(entries, list):
                raise ValueError(f"task data {MAPS!r} must be a list")
            return [_map_info(e, category, space, where) for e in entries]
        return [_map_info(data, category, space, where)]
    except KeyError as missing:
        raise ValueError(
            f"task data lacks {missing}: was the task made by xnaming publish?"
        ) from None
    except (TypeError, AttributeError) as error:
        raise ValueError(f"task data is malformed: {error}") from None


def _number(value: object, what: str) -> float:
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return number


def _heat(entry: Mapping) -> tuple[float, float] | None:
    if HEAT_X in entry and HEAT_Y in entry:
        return (_number(entry[HEAT_X], HEAT_X), _number(entry[HEAT_Y], HEAT_Y))
    return None


def _descriptors(entry: Mapping) -> tuple[float, ...] | None:
    values = entry.get(DESCRIPTORS_KEY)
    if values is None:
        return None
    if not isinstance(values, Mapping):
        raise ValueError(f"{DESCRIPTORS_KEY!r} must be an object")
    if any(name not in values for name in DESCRIPTORS):
        return None  # made by an older publish: the backend works without them
    return tuple(_number(values[name], f"{DESCRIPTORS_KEY}.{name}") for name in DESCRIPTORS)


def _where(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < len(GEOMETRY):
        raise ValueError(
            f"task data {EMBEDDING_WHERE!r} must be a whole number of at least {len(GEOMETRY)} "
            f"(the embedding's trailing geometry and part columns), got {value!r}"
        )
    return value


def _map_info(entry: Mapping, category: str, space: str | None, where: int | None) -> MapInfo:
    embedding = entry.get(EMBEDDING)
    if embedding is not None:
        embedding = decode_embedding(embedding)
        if where is not None and where > len(embedding):
            raise ValueError(
                f"task data {EMBEDDING_WHERE!r} is {where}, more than the {len(embedding)} "
                "values of an embedding"
            )
    return MapInfo(
        str(entry[ACTIVATION_ID]),
        category,
        int(entry[X_FEATURE]),
        _heat(entry),
        _descriptors(entry),
        embedding,
        space if embedding is not None else None,
        where if embedding is not None else None,
    )
