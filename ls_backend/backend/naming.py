"""The naming logic of the ML backend: maps as task data carries them, and the older proposal.

A map is described by what the task data carries (``docs/formats.md``; read by
:func:`label_config.tasks.maps_of_task`, re-exported here with :class:`MapInfo`,
:data:`DESCRIPTORS` and the embedding codec): its category, its X-feature, the centre of its
heat, a few numbers on how strong and how focused it is and, for a bundle with map embeddings,
its embedding, which :func:`features_of` turns into the input of the per-annotator model
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

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
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
MIN_HISTORY = 20
"""Earlier maps of a status (named, unnamed, discarded) needed before the proposal predicts that
status; it learns once two statuses have as many."""


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
