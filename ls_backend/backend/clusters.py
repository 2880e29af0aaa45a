"""Single-link clusters of maps by where their heat lies: both proposals split an X-feature so."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["single_link"]


def single_link(heats: Sequence[tuple[float, float] | None], near: float) -> list[list[int]]:
    """Groups of the indices of ``heats`` whose heat centres chain within ``near``.

    Two maps join when their centres lie at most ``near`` apart (in image fractions), or when
    either has no centre; a group is every map reachable through such joins.

    Parameters
    ----------
    heats
        Each map's heat centre ``(x, y)``, or ``None``.
    near
        The largest distance that joins two maps.

    Returns
    -------
    list of list of int
        The groups, in the order of their first member; members in index order.
    """
    parent = list(range(len(heats)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a in range(len(heats)):
        for b in range(a + 1, len(heats)):
            ha, hb = heats[a], heats[b]
            if ha is None or hb is None or math.dist(ha, hb) <= near:
                parent[root(a)] = root(b)
    groups: dict[int, list[int]] = {}
    for i in range(len(heats)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())
