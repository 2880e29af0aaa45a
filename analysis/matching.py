"""Best D-family matchings between two namings (Cazals, Mazauric, Tetley, Watrigant 2017).

The intersection graph of two namings is bipartite: one node per concept, an edge between two
concepts that share activations, weighted by how many they share (the contingency table). A
D-family partitions the nodes into sets whose induced subgraphs are connected with diameter
<= D; its weight is the total weight of the edges inside the sets.

- D = 1: every set is one edge or one node: a maximum-weight assignment (Hungarian method,
  :func:`scipy.optimize.linear_sum_assignment`).
- D = 2: in a bipartite graph a connected set of diameter <= 2 is a complete bipartite subgraph
  (a biclique; stars included), so the problem is "partition into bicliques of G". It is
  NP-hard in general; here each connected component is solved exactly by integer programming
  (:func:`scipy.optimize.milp`, HiGHS) over one 0/1 variable per edge ("both ends in the same
  set") with, for every path u-v-u'-v' of three edges, the transitivity constraint
  x[u,v] + x[u',v] + x[u',v'] - x[u,v'] <= 2 (x[u,v'] = 0 when u and v' share nothing). A
  component that is itself a biclique, or whose greedy solution already reaches its total
  weight, needs no solver. When the solver hits its time or size limit the best solution found
  is returned with ``optimal=False`` and a proven upper bound.

References
----------
F. Cazals, D. Mazauric, R. Tetley, R. Watrigant, "Comparing two clusterings using matchings
between clusters of clusters", INRIA RR-9063 (2017); ACM J. Exp. Algorithmics 24 (2019).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linear_sum_assignment, milp
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["Matching", "intersection_graph", "match_d1", "match_d2", "match_d_family"]

Group = tuple[tuple[int, ...], tuple[int, ...]]


@dataclass(frozen=True)
class Matching:
    """A D-family matching of an intersection graph.

    Attributes
    ----------
    d
        The diameter bound (1 or 2).
    weight
        Total weight of the edges inside the sets (activations "translatable" between namings).
    groups
        The sets with at least one edge, as (row concepts, column concepts) index tuples; every
        other node is a set of its own.
    optimal
        True when ``weight`` is proven to be the maximum.
    upper_bound
        A proven upper bound on the maximum weight (equal to ``weight`` when optimal).
    """

    d: int
    weight: int
    groups: tuple[Group, ...]
    optimal: bool = True
    upper_bound: int = 0


def intersection_graph(
    labels_a: np.ndarray, labels_b: np.ndarray, n_a: int, n_b: int
) -> np.ndarray:
    """Weights of the intersection graph of two namings of the same activations.

    Parameters
    ----------
    labels_a, labels_b
        Integer concept codes per activation, ``-1`` where the annotator did not name it.
    n_a, n_b
        Number of concepts of each annotator (codes run from 0 to n - 1).

    Returns
    -------
    numpy.ndarray
        ``(n_a, n_b)`` int64 matrix: activations named by both, per pair of concepts (the
        contingency table restricted to activations both annotators named).
    """
    labels_a = np.asarray(labels_a)
    labels_b = np.asarray(labels_b)
    if labels_a.shape != labels_b.shape:
        raise ValueError(
            f"labels_a and labels_b differ in shape: {labels_a.shape} vs {labels_b.shape}"
        )
    both = (labels_a >= 0) & (labels_b >= 0)
    flat = labels_a[both].astype(np.int64) * n_b + labels_b[both]
    return np.bincount(flat, minlength=n_a * n_b).reshape(n_a, n_b)


def _check_weights(weights: np.ndarray) -> np.ndarray:
    w = np.asarray(weights)
    if w.ndim != 2:
        raise ValueError(f"weights must be a 2-D matrix, got shape {w.shape}")
    if not np.issubdtype(w.dtype, np.integer):
        if not np.all(np.isfinite(w)) or not np.array_equal(w, np.round(w)):
            raise ValueError("weights must be finite whole numbers (counts of shared activations)")
        w = w.astype(np.int64)
    if (w < 0).any():
        raise ValueError("weights must be non-negative (counts of shared activations)")
    return w.astype(np.int64)


def match_d1(weights: np.ndarray) -> Matching:
    """Best 1-family matching: a maximum-weight one-to-one matching of concepts.

    Parameters
    ----------
    weights
        Intersection graph weights (see :func:`intersection_graph`).

    Returns
    -------
    Matching
        Always optimal.
    """
    w = _check_weights(weights)
    if w.size == 0:
        return Matching(1, 0, (), True, 0)
    rows, cols = linear_sum_assignment(w, maximize=True)
    groups = tuple(((int(r),), (int(c),)) for r, c in zip(rows, cols, strict=True) if w[r, c] > 0)
    total = int(sum(w[g[0][0], g[1][0]] for g in groups))
    return Matching(1, total, groups, True, total)


def match_d2(weights: np.ndarray, *, time_limit: float = 5.0, max_paths: int = 200_000) -> Matching:
    """Best 2-family matching: a partition of the concepts into bicliques of maximum weight.

    Parameters
    ----------
    weights
        Intersection graph weights (see :func:`intersection_graph`).
    time_limit
        Seconds the integer program may spend on one connected component.
    max_paths
        Largest number of transitivity constraints (3-edge paths) a component may need before
        the exact solver is skipped and the greedy solution is returned, unproven.

    Returns
    -------
    Matching
        ``optimal`` is False when a limit stopped the proof; ``upper_bound`` then bounds the
        maximum from above.
    """
    w = _check_weights(weights)
    groups: list[Group] = []
    weight = bound = 0
    optimal = True
    for rows, cols in _components(w):
        sub = w[np.ix_(rows, cols)]
        value, sub_groups, sub_optimal, sub_bound = _solve_component(sub, time_limit, max_paths)
        weight += value
        bound += sub_bound
        optimal &= sub_optimal
        groups.extend(
            (tuple(int(rows[i]) for i in gr), tuple(int(cols[j]) for j in gc))
            for gr, gc in sub_groups
        )
    return Matching(2, weight, tuple(sorted(groups)), optimal, bound if not optimal else weight)


def match_d_family(weights: np.ndarray, d: int, **limits: float) -> Matching:
    """Best D-family matching for ``d`` in {1, 2} (see :func:`match_d1`, :func:`match_d2`)."""
    if d == 1:
        return match_d1(weights)
    if d == 2:
        return match_d2(weights, **limits)
    raise ValueError(f"d must be 1 or 2, got {d!r}")


def _components(w: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Connected components of the intersection graph that have at least one edge."""
    m, n = w.shape
    r, c = np.nonzero(w)
    if r.size == 0:
        return []
    adjacency = coo_matrix((np.ones(r.size), (r, m + c)), shape=(m + n, m + n))
    _, component = connected_components(adjacency, directed=False)
    result = []
    for label in np.unique(component[r]):
        rows = np.flatnonzero((component[:m] == label) & (w > 0).any(axis=1))
        cols = np.flatnonzero((component[m:] == label) & (w > 0).any(axis=0))
        result.append((rows, cols))
    return result


def _solve_component(
    w: np.ndarray, time_limit: float, max_paths: int
) -> tuple[int, list[Group], bool, int]:
    """Exact (when limits allow) biclique partition of one connected component."""
    total = int(w.sum())
    m, n = w.shape
    if (w > 0).all():  # the component is a biclique: one set takes every edge
        return total, [(tuple(range(m)), tuple(range(n)))], True, total
    best_value, best_groups = _greedy(w)
    if best_value == total:
        return best_value, best_groups, True, total
    edges = np.argwhere(w > 0)
    index = -np.ones((m, n), dtype=np.int64)
    index[edges[:, 0], edges[:, 1]] = np.arange(len(edges))
    paths = _three_edge_paths(w > 0, index, max_paths)
    if paths is None:
        return best_value, best_groups, False, total
    a, b, c, closing = paths
    k = len(a)
    row_ids = np.repeat(np.arange(k), 3)
    col_ids = np.column_stack([a, b, c]).ravel()
    data = np.ones(3 * k)
    has_closing = closing >= 0
    row_ids = np.concatenate([row_ids, np.flatnonzero(has_closing)])
    col_ids = np.concatenate([col_ids, closing[has_closing]])
    data = np.concatenate([data, -np.ones(int(has_closing.sum()))])
    constraints = []
    if k:
        matrix = coo_matrix((data, (row_ids, col_ids)), shape=(k, len(edges))).tocsr()
        constraints.append(LinearConstraint(matrix, -np.inf, 2))
    values = w[edges[:, 0], edges[:, 1]].astype(float)
    result = milp(
        -values,
        constraints=constraints,
        integrality=np.ones(len(edges)),
        bounds=Bounds(0, 1),
        options={"time_limit": time_limit},
    )
    if result.x is not None:
        chosen = edges[result.x > 0.5]
        value, groups = _groups_from_edges(w, chosen)
        if value > best_value:
            best_value, best_groups = value, groups
    if result.status == 0:
        return best_value, best_groups, True, best_value
    dual = getattr(result, "mip_dual_bound", None)
    bound = (
        total if dual is None or not np.isfinite(dual) else min(total, int(np.floor(-dual + 1e-6)))
    )
    return best_value, best_groups, bound <= best_value, max(bound, best_value)


def _three_edge_paths(
    adjacent: np.ndarray, index: np.ndarray, max_paths: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Every path u-v-u'-v' as edge indices (u,v), (u',v), (u',v') and the closing edge (u,v')."""
    a, b, c, closing = [], [], [], []
    count = 0
    for u2, v in np.argwhere(adjacent):
        us = np.flatnonzero(adjacent[:, v])
        us = us[us != u2]
        vs = np.flatnonzero(adjacent[u2])
        vs = vs[vs != v]
        if us.size == 0 or vs.size == 0:
            continue
        count += us.size * vs.size
        if count > max_paths:
            return None
        uu, vv = np.meshgrid(us, vs, indexing="ij")
        uu, vv = uu.ravel(), vv.ravel()
        a.append(index[uu, v])
        b.append(np.full(uu.size, index[u2, v]))
        c.append(index[u2, vv])
        closing.append(index[uu, vv])
    if not a:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty, empty
    return tuple(np.concatenate(x) for x in (a, b, c, closing))  # type: ignore[return-value]


def _groups_from_edges(w: np.ndarray, chosen: np.ndarray) -> tuple[int, list[Group]]:
    """Sets formed by the chosen edges; checks each is a biclique of the graph."""
    m, n = w.shape
    if len(chosen) == 0:
        return 0, []
    adjacency = coo_matrix(
        (np.ones(len(chosen)), (chosen[:, 0], m + chosen[:, 1])), shape=(m + n, m + n)
    )
    _, component = connected_components(adjacency, directed=False)
    groups: list[Group] = []
    value = 0
    for label in np.unique(component[chosen[:, 0]]):
        rows = np.flatnonzero(component[:m] == label)
        cols = np.flatnonzero(component[m:] == label)
        block = w[np.ix_(rows, cols)]
        if not (block > 0).all():  # cannot happen with the transitivity constraints
            raise RuntimeError("internal error: a D=2 set is not a biclique")
        value += int(block.sum())
        groups.append((tuple(int(i) for i in rows), tuple(int(j) for j in cols)))
    return value, groups


def _greedy(w: np.ndarray) -> tuple[int, list[Group]]:
    """Start from the D = 1 matching, then merge sets while a merge stays a biclique and gains."""
    m, n = w.shape
    adjacent = w > 0
    sets: list[tuple[set[int], set[int]]] = [({i}, set()) for i in range(m)]
    rows, cols = linear_sum_assignment(w, maximize=True)
    matched_cols = set()
    for r, c in zip(rows, cols, strict=True):
        if w[r, c] > 0:
            sets[r][1].add(int(c))
            matched_cols.add(int(c))
    sets.extend((set(), {j}) for j in range(n) if j not in matched_cols)
    while True:
        best_gain, best_pair = 0, None
        for i in range(len(sets)):
            ri, ci = sets[i]
            for k in range(i + 1, len(sets)):
                rk, ck = sets[k]
                rs, cs = list(ri | rk), list(ci | ck)
                if not rs or not cs or not adjacent[np.ix_(rs, cs)].all():
                    continue
                gain = int(
                    w[np.ix_(list(ri), list(ck))].sum() + w[np.ix_(list(rk), list(ci))].sum()
                )
                if gain > best_gain:
                    best_gain, best_pair = gain, (i, k)
        if best_pair is None:
            break
        i, k = best_pair
        sets[i] = (sets[i][0] | sets[k][0], sets[i][1] | sets[k][1])
        del sets[k]
    groups = [(tuple(sorted(r)), tuple(sorted(c))) for r, c in sets if r and c]
    value = sum(int(w[np.ix_(list(r), list(c))].sum()) for r, c in groups)
    return value, groups
