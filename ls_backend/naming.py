"""The naming logic of the ML backend: proposals for boards and per-map tasks. No Flask here.

A map is described by what the task data carries (``docs/formats.md``): its category, its
X-feature and, when the bundle gave it, the centre of its heat (``heat_x``, ``heat_y`` in
[0, 1]). Two maps are *similar* when they share category and X-feature and their heat centres
lie within :data:`NEAR` of each other.

- Board proposal: maps of one X-feature form a group, split where their heat centres lie far
  apart (single-link clustering at distance :data:`NEAR`), since one X-feature firing on two
  places is often two concepts. Groups are named from this annotator's earlier namings of
  similar maps (majority vote), when there are any.
- Per-map proposal: the concept this annotator chose most often for similar maps, with the
  vote share as score; nothing when there is no basis.
- :func:`moves_needed`: how many maps an annotator must drag to turn one board into another.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from label_config import BOARD_LIST, BOARD_RANKER, group_bucket, group_name_control

__all__ = [
    "NEAR",
    "MapInfo",
    "Naming",
    "board_prediction",
    "board_proposal",
    "maps_of_task",
    "moves_needed",
    "per_map_proposal",
]

NEAR = 0.25
"""Distance between heat centres (in image fractions) under which two maps count as similar."""
_NEIGHBOURS = 7


@dataclass(frozen=True)
class MapInfo:
    """One activation map as the backend sees it."""

    activation_id: str
    category: str
    x_feature: int
    heat: tuple[float, float] | None = None


@dataclass(frozen=True)
class Naming:
    """What an annotator did with one map."""

    map: MapInfo
    concept: str
    status: str  # named | unnamed | discarded


def _heat(entry: Mapping) -> tuple[float, float] | None:
    if "heat_x" in entry and "heat_y" in entry:
        return (float(entry["heat_x"]), float(entry["heat_y"]))
    return None


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
        if "activations" in data:
            entries = data["activations"]
            if not isinstance(entries, list):
                raise ValueError("task data 'activations' must be a list")
            return [
                MapInfo(str(e["activation_id"]), category, int(e["x_feature"]), _heat(e))
                for e in entries
            ]
        return [MapInfo(str(data["activation_id"]), category, int(data["x_feature"]), _heat(data))]
    except KeyError as missing:
        raise ValueError(
            f"task data lacks {missing}: was the task made by xnaming publish?"
        ) from None
    except (TypeError, AttributeError) as error:
        raise ValueError(f"task data is malformed: {error}") from None


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
    votes = Counter(n.concept for _, n in _similar(target, earlier) if n.status == "named")
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


def board_proposal(
    maps: Sequence[MapInfo], earlier: Sequence[Naming], groups: int
) -> tuple[dict[str, list[str]], dict[int, str]]:
    """A proposed grouping of a board and names for its groups.

    Parameters
    ----------
    maps
        The board's maps.
    earlier
        This annotator's earlier namings.
    groups
        Number of group buckets in the config; the smallest clusters beyond it stay unsorted.

    Returns
    -------
    buckets : dict
        Ranker value: ``{"_": [...], "g1": [...], ..., "discard": []}``.
    names : dict
        Group index (1-based) -> proposed name, for groups with a basis.
    """
    by_feature: dict[int, list[MapInfo]] = {}
    for m in maps:
        by_feature.setdefault(m.x_feature, []).append(m)
    clusters = [c for members in by_feature.values() for c in _clusters(members)]
    # Largest first; ties by X-feature, so the proposal is deterministic.
    clusters.sort(key=lambda c: (-len(c), c[0].x_feature, c[0].activation_id))
    buckets: dict[str, list[str]] = {"_": [], "discard": []}
    names: dict[int, str] = {}
    for index, cluster in enumerate(clusters, start=1):
        ids = [m.activation_id for m in cluster]
        if index > groups:
            buckets["_"].extend(ids)
            continue
        buckets[group_bucket(index)] = ids
        votes: Counter[str] = Counter()
        for m in cluster:
            if (proposal := per_map_proposal(m, earlier)) is not None:
                votes[proposal[0]] += 1
        if votes:
            names[index] = votes.most_common(1)[0][0]
    return buckets, names


def board_prediction(maps: Sequence[MapInfo], earlier: Sequence[Naming], groups: int) -> list[dict]:
    """:func:`board_proposal` as Label Studio result regions (ranker and textareas)."""
    buckets, names = board_proposal(maps, earlier, groups)
    result = [
        {
            "from_name": BOARD_RANKER,
            "to_name": BOARD_LIST,
            "type": "ranker",
            "value": {"ranker": buckets},
        }
    ]
    for index, name in sorted(names.items()):
        result.append(
            {
                "from_name": group_name_control(index),
                "to_name": BOARD_LIST,
                "type": "textarea",
                "value": {"text": [name]},
            }
        )
    return result


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
    fixed = {"_", "discard"}
    kept = 0
    start_groups = sorted({b for b in where_start.values() if b not in fixed})
    goal_groups = sorted({b for b in where_goal.values() if b not in fixed})
    overlap = np.zeros((len(start_groups), len(goal_groups)), dtype=np.int64)
    for aid in ids:
        a, b = where_start.get(aid, "_"), where_goal.get(aid, "_")
        if a in fixed or b in fixed:
            kept += a == b
        else:
            overlap[start_groups.index(a), goal_groups.index(b)] += 1
    if overlap.size:
        rows, cols = linear_sum_assignment(overlap, maximize=True)
        kept += int(overlap[rows, cols].sum())
    return len(ids) - kept
