"""The naming logic of the ML backend: maps as task data carries them, and the older proposal.

A map is described by what the task data carries (``docs/formats.md``): its category, its
X-feature, the centre of its heat (``heat_x``, ``heat_y`` in [0, 1]), a few numbers on how
strong and how focused it is (:data:`DESCRIPTORS`, computed by :func:`describe_map` at publish
time) and, for a bundle with map embeddings, its embedding (:func:`encode_embedding`), which
:func:`features_of` turns into the input of the per-annotator model
(:mod:`ls_backend.backend.annotator_model`). What follows is the older proposal, for tasks without
embeddings. Two maps are *similar* when they share category and X-feature and their heat
centres lie within :data:`NEAR` of each other.

- Board proposal: maps of one X-feature form a group, split where their heat centres lie far
  apart (single-link clustering at distance :data:`NEAR`), since one X-feature firing on two
  places is often two concepts. Once the annotator has sorted enough maps on earlier boards,
  a logistic regression on the descriptors learns which maps *they* leave unnamed or discard
  (too diffuse, too weak: each annotator draws the line elsewhere), and the proposal starts
  such maps in Unsorted or Discard instead of a group. Groups are named from this
  annotator's earlier namings of similar maps (majority vote), when there are any.
- Per-map proposal: the concept this annotator chose most often for similar maps, with the
  vote share as score; nothing when there is no basis.
- :func:`moves_needed`: how many maps an annotator must drag to turn one board into another.
"""

from __future__ import annotations

import base64
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from label_config import (
    BOARD_DISCARD,
    DEFAULT_GROUPS,
    NAMED,
    UNNAMED,
    UNSORTED,
    group_bucket,
    group_name_region,
    ranker_region,
)
from xnn_training.bundle.embeddings import GEOMETRY
from xnn_training.maps.hot_spot import hot_spot

__all__ = [
    "DESCRIPTORS",
    "MIN_HISTORY",
    "NEAR",
    "MapInfo",
    "Naming",
    "board_prediction",
    "board_proposal",
    "decode_embedding",
    "describe_map",
    "encode_embedding",
    "features_of",
    "fit_status_guess",
    "maps_of_task",
    "moves_needed",
    "off_parts",
    "part_columns",
    "per_map_proposal",
    "where_columns",
]

NEAR = 0.25
"""Distance between heat centres (in image fractions) under which two maps count as similar."""
_NEIGHBOURS = 7
DESCRIPTORS: tuple[str, ...] = (
    "share",
    "rank",
    "hot_area",
    "hot_mass",
    "hot_spread",
    "heat_spread",
    "peak",
    "hot_regions",
)
"""What the backend knows of a map's look, in task data under ``descriptors``: the X-feature's
share of the image's positive score and its rank among the image's significant X-features
(from the bundle), and the numbers of :func:`describe_map`."""
MIN_HISTORY = 20
"""Earlier maps of a status (named, unnamed, discarded) needed before the proposal predicts that
status; it learns once two statuses have as many."""


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


@dataclass(frozen=True)
class Naming:
    """What an annotator did with one map."""

    map: MapInfo
    concept: str
    status: str  # label_config's NAMED | UNNAMED | DISCARDED


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
        raise ValueError(f"'embedding' must be a base64 string, got {type(text).__name__}")
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise ValueError("'embedding' is not base64") from None
    if not raw or len(raw) % 4:
        raise ValueError(f"'embedding' holds {len(raw)} bytes, not float32 values")
    values = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if not np.isfinite(values).all():
        raise ValueError("'embedding' holds values that are not finite")
    return values


def features_of(maps: Sequence[MapInfo]) -> np.ndarray:
    """The annotator model's input rows: each map's embedding, then its descriptors.

    Maps without descriptors get zeros there; every map must have an embedding.
    """
    rows = []
    for m in maps:
        if m.embedding is None:
            raise ValueError(f"map {m.activation_id} has no embedding")
        looks = m.descriptors if m.descriptors is not None else (0.0,) * len(DESCRIPTORS)
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


def _number(value: object, what: str) -> float:
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return number


def _heat(entry: Mapping) -> tuple[float, float] | None:
    if "heat_x" in entry and "heat_y" in entry:
        return (_number(entry["heat_x"], "heat_x"), _number(entry["heat_y"], "heat_y"))
    return None


def _descriptors(entry: Mapping) -> tuple[float, ...] | None:
    values = entry.get("descriptors")
    if values is None:
        return None
    if not isinstance(values, Mapping):
        raise ValueError("'descriptors' must be an object")
    if any(name not in values for name in DESCRIPTORS):
        return None  # made by an older publish: the backend works without them
    return tuple(_number(values[name], f"descriptors.{name}") for name in DESCRIPTORS)


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
        category = str(data["category"])
        space = data.get("embedding_space")
        space = None if space is None else str(space)
        where = _where(data.get("embedding_where"))
        if "activations" in data:
            entries = data["activations"]
            if not isinstance(entries, list):
                raise ValueError("task data 'activations' must be a list")
            return [_map_info(e, category, space, where) for e in entries]
        return [_map_info(data, category, space, where)]
    except KeyError as missing:
        raise ValueError(
            f"task data lacks {missing}: was the task made by xnaming publish?"
        ) from None
    except (TypeError, AttributeError) as error:
        raise ValueError(f"task data is malformed: {error}") from None


def _where(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < len(GEOMETRY):
        raise ValueError(
            f"task data 'embedding_where' must be a whole number of at least {len(GEOMETRY)} "
            f"(the embedding's trailing geometry and part columns), got {value!r}"
        )
    return value


def _map_info(entry: Mapping, category: str, space: str | None, where: int | None) -> MapInfo:
    embedding = entry.get("embedding")
    if embedding is not None:
        embedding = decode_embedding(embedding)
        if where is not None and where > len(embedding):
            raise ValueError(
                f"task data 'embedding_where' is {where}, more than the {len(embedding)} "
                "values of an embedding"
            )
    return MapInfo(
        str(entry["activation_id"]),
        category,
        int(entry["x_feature"]),
        _heat(entry),
        _descriptors(entry),
        embedding,
        space if embedding is not None else None,
        where if embedding is not None else None,
    )


def _distance(a: MapInfo, b: MapInfo) -> float:
    if a.heat is None or b.heat is None:
        return 0.0
    return math.dist(a.heat, b.heat)


def _similar(target: MapInfo, earlier: Iterable[Naming]) -> list[tuple[float, Naming]]:
    near = [
        (_distance(target, n.map), n)
        for n in earlier
        if n.map.category == target.category and n.map.x_feature == target.x_feature
    ]
    near = [(d, n) for d, n in near if d <= NEAR]
    near.sort(key=lambda pair: pair[0])
    return near[:_NEIGHBOURS]


def per_map_proposal(target: MapInfo, earlier: Sequence[Naming]) -> tuple[str, float] | None:
    """The concept this annotator most likely gives ``target``, and its vote share.

    Parameters
    ----------
    target
        The map to name.
    earlier
        This annotator's earlier namings (any status).

    Returns
    -------
    tuple of (str, float) or None
        ``(concept, score)``; ``None`` when no similar map was named.
    """
    votes = Counter(n.concept for _, n in _similar(target, earlier) if n.status == NAMED)
    if not votes:
        return None
    concept, count = votes.most_common(1)[0]
    return concept, count / sum(votes.values())


def _clusters(maps: list[MapInfo]) -> list[list[MapInfo]]:
    """Single-link clusters of maps by heat centre at distance NEAR."""
    parent = list(range(len(maps)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(maps)):
        for j in range(i + 1, len(maps)):
            if _distance(maps[i], maps[j]) <= NEAR:
                parent[root(i)] = root(j)
    groups: dict[int, list[MapInfo]] = {}
    for i, m in enumerate(maps):
        groups.setdefault(root(i), []).append(m)
    return list(groups.values())


def fit_status_guess(earlier: Sequence[Naming]) -> Callable[[Sequence[MapInfo]], list[str]] | None:
    """Learn, from an annotator's earlier namings, what they do with a map of a given look.

    A logistic regression on the standardised :data:`DESCRIPTORS` of the earlier maps, with
    their status (named, unnamed, discarded) as the outcome. It carries over between boards of
    different categories because it looks at how a map looks, not at its X-feature.

    Parameters
    ----------
    earlier
        This annotator's earlier namings, of any category.

    Returns
    -------
    callable or None
        ``guess(maps)`` -> the likeliest status of each map ("named" for maps without
        descriptors); ``None`` when there is no basis: fewer than two statuses with
        :data:`MIN_HISTORY` earlier maps with descriptors each.
    """
    known = [n for n in earlier if n.map.descriptors is not None]
    # A status seen a few times only is no basis for predicting it (it would be over-fitted).
    counts = Counter(n.status for n in known)
    known = [n for n in known if counts[n.status] >= MIN_HISTORY]
    statuses = [n.status for n in known]
    if len(set(statuses)) < 2:
        return None
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(np.array([n.map.descriptors for n in known]), statuses)

    def guess(maps: Sequence[MapInfo]) -> list[str]:
        result = [NAMED] * len(maps)
        rows = [i for i, m in enumerate(maps) if m.descriptors is not None]
        if rows:
            looks = np.array([maps[i].descriptors for i in rows])
            for i, status in zip(rows, model.predict(looks), strict=True):
                result[i] = str(status)
        return result

    return guess


def board_proposal(
    maps: Sequence[MapInfo], earlier: Sequence[Naming], *, groups: int = DEFAULT_GROUPS
) -> tuple[dict[str, list[str]], dict[int, str]]:
    """A proposed grouping of a board and names for its groups.

    Parameters
    ----------
    maps
        The board's maps.
    earlier
        This annotator's earlier namings, of any category: names come from similar maps of
        the same category, the choice of what to leave unsorted or discard from all of them
        (:func:`fit_status_guess`).
    groups
        Number of group buckets in the config; the smallest clusters beyond it stay unsorted.

    Returns
    -------
    buckets : dict
        Ranker value: ``{"_": [...], "g1": [...], ..., "discard": []}``.
    names : dict
        Group index (1-based) -> proposed name, for groups with a basis.
    """
    buckets: dict[str, list[str]] = {UNSORTED: [], BOARD_DISCARD: []}
    guess = fit_status_guess(earlier)
    if guess is not None:
        # A map costs a drag unless it starts where the annotator will want it: start each
        # in the bucket of its likeliest status, and group only the likely named ones.
        statuses = guess(maps)
        for m, status in zip(maps, statuses, strict=True):
            if status != NAMED:
                buckets[UNSORTED if status == UNNAMED else BOARD_DISCARD].append(m.activation_id)
        maps = [m for m, status in zip(maps, statuses, strict=True) if status == NAMED]
    by_feature: dict[int, list[MapInfo]] = {}
    for m in maps:
        by_feature.setdefault(m.x_feature, []).append(m)
    clusters = [c for members in by_feature.values() for c in _clusters(members)]
    # Largest first; ties by X-feature, so the proposal is deterministic.
    clusters.sort(key=lambda c: (-len(c), c[0].x_feature, c[0].activation_id))
    # Only same-category, same-X-feature namings can name a group: index them once.
    same_feature: dict[tuple[str, int], list[Naming]] = {}
    for n in earlier:
        same_feature.setdefault((n.map.category, n.map.x_feature), []).append(n)
    names: dict[int, str] = {}
    for index, cluster in enumerate(clusters, start=1):
        ids = [m.activation_id for m in cluster]
        if index > groups:
            buckets[UNSORTED].extend(ids)
            continue
        buckets[group_bucket(index)] = ids
        votes: Counter[str] = Counter()
        for m in cluster:
            similar = same_feature.get((m.category, m.x_feature), [])
            if (proposal := per_map_proposal(m, similar)) is not None:
                votes[proposal[0]] += 1
        if votes:
            names[index] = votes.most_common(1)[0][0]
    return buckets, names


def board_prediction(
    maps: Sequence[MapInfo], earlier: Sequence[Naming], *, groups: int = DEFAULT_GROUPS
) -> list[dict]:
    """:func:`board_proposal` as Label Studio result regions (ranker and textareas)."""
    buckets, names = board_proposal(maps, earlier, groups=groups)
    return [
        ranker_region(buckets),
        *(group_name_region(index, name) for index, name in sorted(names.items())),
    ]


def _partition(board: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """activation id -> bucket; ids under ``_`` map to ``_``."""
    return {aid: bucket for bucket, ids in board.items() for aid in ids}


def moves_needed(start: Mapping[str, Iterable[str]], goal: Mapping[str, Iterable[str]]) -> int:
    """The fewest map drags that turn board ``start`` into board ``goal``.

    Group buckets are interchangeable (an annotator names groups freely), so the groups of
    ``start`` are matched to those of ``goal`` to keep as many maps in place as possible
    (Hungarian assignment); Unsorted (``_``) and ``discard`` match only themselves. Maps absent
    from a board count as unsorted.

    Parameters
    ----------
    start, goal
        Ranker values: bucket name -> activation ids.

    Returns
    -------
    int
        Number of maps that must be dragged.
    """
    where_start, where_goal = _partition(start), _partition(goal)
    ids = set(where_start) | set(where_goal)
    fixed = {UNSORTED, BOARD_DISCARD}
    kept = 0
    start_groups = sorted({b for b in where_start.values() if b not in fixed})
    goal_groups = sorted({b for b in where_goal.values() if b not in fixed})
    overlap = np.zeros((len(start_groups), len(goal_groups)), dtype=np.int64)
    for aid in ids:
        a, b = where_start.get(aid, UNSORTED), where_goal.get(aid, UNSORTED)
        if a in fixed or b in fixed:
            kept += a == b
        else:
            overlap[start_groups.index(a), goal_groups.index(b)] += 1
    if overlap.size:
        rows, cols = linear_sum_assignment(overlap, maximize=True)
        kept += int(overlap[rows, cols].sum())
    return len(ids) - kept
