"""The older proposal, for tasks without map embeddings: by X-feature and where the heat lies.

Two maps are *similar* when they share category and X-feature and their heat centres lie within
:data:`NEAR` of each other.

- Board proposal: maps of one X-feature form a group, split where their heat centres lie far
  apart (single-link clustering at distance :data:`NEAR`), since one X-feature firing on two
  places is often two concepts. Once the annotator has sorted enough maps on earlier boards,
  a logistic regression on the descriptors learns which maps *they* leave unnamed or discard
  (too diffuse, too weak: each annotator draws the line elsewhere), and the proposal starts
  such maps in Unsorted or Discard instead of a group. Groups are named from this
  annotator's earlier namings of similar maps (majority vote), when there are any.
- Per-map proposal: the concept this annotator chose most often for similar maps, with the
  vote share as score; nothing when there is no basis.

Tasks with embeddings get the per-annotator model instead
(:mod:`ls_backend.backend.annotator_model`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import numpy as np
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
from label_config.tasks import DESCRIPTORS, MapInfo
from ls_backend.backend.clusters import single_link
from ls_backend.backend.naming import Naming

__all__ = [
    "MIN_STATUS_HISTORY",
    "NEAR",
    "board_prediction",
    "board_proposal",
    "fit_status_guess",
    "per_map_proposal",
]

NEAR = 0.25
"""Distance between heat centres (in image fractions) under which two maps count as similar."""
_NEIGHBOURS = 7
MIN_STATUS_HISTORY = 20
"""Earlier maps of a status (named, unnamed, discarded) needed before the proposal predicts that
status; it learns once two statuses have as many."""


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
    """Single-link clusters of maps by heat centre at distance :data:`NEAR`."""
    return [[maps[i] for i in group] for group in single_link([m.heat for m in maps], NEAR)]


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
        :data:`MIN_STATUS_HISTORY` earlier maps with descriptors each.
    """
    known = [n for n in earlier if _looks(n.map)]
    # A status seen a few times only is no basis for predicting it (it would be over-fitted).
    counts = Counter(n.status for n in known)
    known = [n for n in known if counts[n.status] >= MIN_STATUS_HISTORY]
    statuses = [n.status for n in known]
    if len(set(statuses)) < 2:
        return None
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(np.array([n.map.descriptors for n in known]), statuses)

    def guess(maps: Sequence[MapInfo]) -> list[str]:
        result = [NAMED] * len(maps)
        rows = [i for i, m in enumerate(maps) if _looks(m)]
        if rows:
            looks = np.array([maps[i].descriptors for i in rows])
            for i, status in zip(rows, model.predict(looks), strict=True):
                result[i] = str(status)
        return result

    return guess


def _looks(m: MapInfo) -> bool:
    """Whether a map has today's descriptors (a store written before may hold longer ones)."""
    return m.descriptors is not None and len(m.descriptors) == len(DESCRIPTORS)


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
