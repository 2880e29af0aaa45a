"""The drag metric: how many maps an annotator must drag to turn one board into another."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
from scipy.optimize import linear_sum_assignment

from label_config import BOARD_DISCARD, UNSORTED

__all__ = ["moves_needed"]


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
