"""Best D-family matchings between two namings (Cazals, Mazauric, Tetley, Watrigant 2017).

The intersection graph of two namings is bipartite: one node per concept, an edge between two
concepts that share activations, weighted by how many they share (the contingency table). A
D-family partitions the nodes into sets whose induced subgraphs are connected with diameter
<= D; its weight is the total weight of the edges inside the sets.

- D = 1: every set is one edge or one node: a maximum-weight assignment (Hungarian method,
  :func:`scipy.optimize.linear_sum_assignment`).
- D = 2: in a bipartite graph a connected set of diameter <= 2 is a complete bipartite subgraph
  (a biclique; stars included), so the problem is "partition into bicliques of G". It is
  NP-hard in general; here each connected component of G is solved exactly:

  1. a component that is itself a biclique is one set;
  2. a small one (<= 14 concepts) by exhaustive search over its bicliques;
  3. a larger one by integer programming (:func:`scipy.optimize.milp`, HiGHS) over one 0/1
     variable per edge ("both ends in the same set") with, for every path u-v-u'-v' of three
     edges, the transitivity constraint x[u,v] + x[u',v] + x[u',v'] - x[u,v'] <= 2
     (no x[u,v'] when u and v' share nothing). Its LP relaxation comes first: on namings it
     is usually integral, hence optimal; otherwise a greedy start from the LP's whole edges
     usually meets the LP bound (floor of the LP value), and only when a gap remains does the
     branch-and-bound run.

  When a time or size limit stops the proof, the best solution found is returned with
  ``optimal=False`` and a proven upper bound.

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

from analysis.defaults import D2_TIME_LIMIT

__all__ = ["Matching", "intersection_graph", "match_d1", "match_d2", "match_d_family"]

Group = tuple[tuple[int, ...], tuple[int, ...]]

# Components this small are solved by exhaustive search over their bicliques, which is faster
# than starting the integer-programming solver; larger ones go to the solver.
_SMALL_NODES = 14
_SMALL_CANDIDATES = 3000


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


def match_d2(
    weights: np.ndarray,
    *,
    time_limit: float = D2_TIME_LIMIT,
    max_paths: int = 200_000,
    exact: bool = True,
) -> Matching:
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
    exact
        False: greedy only (no solver), for when a run's time budget is spent; components
        that are bicliques or that the greedy covers entirely are still proven optimal.

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
        if exact:
            value, sub_groups, sub_optimal, sub_bound = _solve_component(sub, time_limit, max_paths)
        else:
            value, sub_groups = _greedy(sub)
            sub_bound = int(sub.sum())
            sub_optimal = value == sub_bound
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


def _union_find_groups(m: int, edges: list[tuple[int, int]]) -> list[tuple[list[int], list[int]]]:
    """Connected components (rows, columns) of the bipartite graph with the given edges.

    Nodes are rows 0..m-1 and columns m..; only nodes on an edge appear. Plain union-find:
    the graphs are small and scipy's sparse machinery costs more than it saves here.
    """
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        root = x
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for i, j in edges:
        parent[find(i)] = find(m + j)
    members: dict[int, tuple[list[int], list[int]]] = {}
    for node in sorted(parent):
        rows, cols = members.setdefault(find(node), ([], []))
        if node < m:
            rows.append(node)
        else:
            cols.append(node - m)
    return list(members.values())


def _components(w: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Connected components of the intersection graph that have at least one edge."""
    r, c = np.nonzero(w)
    groups = _union_find_groups(w.shape[0], list(zip(r.tolist(), c.tolist(), strict=True)))
    return [(np.array(rows), np.array(cols)) for rows, cols in groups]


def _solve_component(
    w: np.ndarray, time_limit: float, max_paths: int
) -> tuple[int, list[Group], bool, int]:
    """Exact (when limits allow) biclique partition of one connected component.

    Returns (weight, sets, proven optimal, upper bound).
    """
    total = int(w.sum())
    m, n = w.shape
    if (w > 0).all():  # the component is a biclique: one set takes every edge
        return total, [(tuple(range(m)), tuple(range(n)))], True, total
    if m + n <= _SMALL_NODES:
        exact = _packing_search(w)
        if exact is not None:
            return exact[0], exact[1], True, exact[0]
    program = _integer_program(w, max_paths)
    if program is None:
        value, groups = _greedy(w)
        return value, groups, value == total, total
    edges, objective, constraints = program
    # The LP relaxation is fast and, on namings, usually integral: then it is the optimum.
    # Otherwise its value bounds the optimum, and a greedy start from the LP's whole edges
    # usually meets that bound; the integer program runs only when a gap remains.
    relaxed = milp(objective, constraints=constraints, bounds=Bounds(0, 1))
    if relaxed.x is None:  # pragma: no cover - the LP is always feasible (x = 0)
        value, groups = _greedy(w)
        return value, groups, value == total, total
    if np.all(np.abs(relaxed.x - np.round(relaxed.x)) < 1e-6):
        value, groups = _groups_from_edges(w, edges[relaxed.x > 0.5])
        return value, groups, True, value
    bound = min(total, int(np.floor(-relaxed.fun + 1e-6)))
    _, start = _groups_from_edges(w, edges[relaxed.x > 1 - 1e-6])
    best_value, best_groups = _greedy(w, start)
    if best_value < bound:
        best_value, best_groups = max((best_value, best_groups), _greedy(w), key=lambda v: v[0])
    if best_value >= bound:
        return best_value, best_groups, True, best_value
    result = milp(
        objective,
        constraints=constraints,
        integrality=np.ones(len(edges)),
        bounds=Bounds(0, 1),
        options={"time_limit": time_limit},
    )
    if result.x is not None:
        value, groups = _groups_from_edges(w, edges[result.x > 0.5])
        if value > best_value:
            best_value, best_groups = value, groups
    if result.status == 0:
        return best_value, best_groups, True, best_value
    dual = getattr(result, "mip_dual_bound", None)
    if dual is not None and np.isfinite(dual):
        bound = min(bound, int(np.floor(-dual + 1e-6)))
    return best_value, best_groups, bound <= best_value, max(bound, best_value)


def _integer_program(
    w: np.ndarray, max_paths: int
) -> tuple[np.ndarray, np.ndarray, list[LinearConstraint]] | None:
    """Edges, objective and transitivity constraints of the D = 2 integer program.

    One variable per edge; for every path u-v-u'-v' of three edges,
    x[u,v] + x[u',v] + x[u',v'] - x[u,v'] <= 2 (no x[u,v'] term when u and v' share
    nothing). None when there are more than ``max_paths`` paths.
    """
    m, n = w.shape
    adjacent = w > 0
    edges = np.argwhere(adjacent)
    index = -np.ones((m, n), dtype=np.int64)
    index[edges[:, 0], edges[:, 1]] = np.arange(len(edges))
    # Every (u, u2, v, v2) with edges u-v, u2-v, u2-v2, u != u2, v != v2: at most m^2 n^2
    # booleans, small for namings (20 concepts: 160 000).
    if m * m * n * n > 50 * max_paths:
        return None
    paths = (
        adjacent[:, None, :, None]
        & adjacent[None, :, :, None]
        & adjacent[None, :, None, :]
        & ~np.eye(m, dtype=bool)[:, :, None, None]
        & ~np.eye(n, dtype=bool)[None, None, :, :]
    )
    u, u2, v, v2 = np.nonzero(paths)
    k = len(u)
    if k > max_paths:
        return None
    closing = index[u, v2]
    has_closing = closing >= 0
    rows = np.concatenate([np.repeat(np.arange(k), 3), np.flatnonzero(has_closing)])
    cols = np.concatenate(
        [np.column_stack([index[u, v], index[u2, v], index[u2, v2]]).ravel(), closing[has_closing]]
    )
    data = np.concatenate([np.ones(3 * k), -np.ones(int(has_closing.sum()))])
    constraints = []
    if k:
        matrix = coo_matrix((data, (rows, cols)), shape=(k, len(edges))).tocsr()
        constraints.append(LinearConstraint(matrix, -np.inf, 2))
    return edges, -w[edges[:, 0], edges[:, 1]].astype(float), constraints


def _groups_from_edges(w: np.ndarray, chosen: np.ndarray) -> tuple[int, list[Group]]:
    """Sets formed by the chosen edges; checks each is a biclique of the graph."""
    groups: list[Group] = []
    value = 0
    for rows, cols in _union_find_groups(w.shape[0], [(int(i), int(j)) for i, j in chosen]):
        block = w[np.ix_(rows, cols)]
        if not (block > 0).all():  # cannot happen with the transitivity constraints
            raise RuntimeError("internal error: a D=2 set is not a biclique")
        value += int(block.sum())
        groups.append((tuple(rows), tuple(cols)))
    return value, groups


def _packing_search(w: np.ndarray) -> tuple[int, list[Group]] | None:
    """Exact biclique partition of a small component by memoised search over node subsets.

    best(S) = max(best(S - first), max over bicliques B with first in B, B in S of
    weight(B) + best(S - B)): every partition into bicliques is visited. Returns None when
    the component has more than ``_SMALL_CANDIDATES`` bicliques.
    """
    m, n = w.shape
    adjacent = w > 0
    neighbours = [sum(1 << j for j in np.flatnonzero(adjacent[i])) for i in range(m)]
    candidates: dict[int, list[tuple[int, int]]] = {}  # lowest node bit -> (mask, weight)
    count = 0
    for rows_mask in range(1, 1 << m):
        rows = [i for i in range(m) if rows_mask >> i & 1]
        common = (1 << n) - 1
        for i in rows:
            common &= neighbours[i]
        # Every non-empty subset of the common neighbours makes a biclique with these rows.
        sub = common
        while sub:
            cols = [j for j in range(n) if sub >> j & 1]
            mask = rows_mask | (sub << m)
            weight = int(w[np.ix_(rows, cols)].sum())
            candidates.setdefault(mask & -mask, []).append((mask, weight))
            count += 1
            if count > _SMALL_CANDIDATES:
                return None
            sub = (sub - 1) & common
    memo: dict[int, tuple[int, int]] = {0: (0, 0)}

    def best(nodes: int) -> tuple[int, int]:
        """(value, chosen set) for the node subset ``nodes``."""
        if nodes in memo:
            return memo[nodes]
        first = nodes & -nodes
        result = (best(nodes & ~first)[0], 0)
        for mask, weight in candidates.get(first, ()):
            if mask & nodes == mask:
                value = weight + best(nodes & ~mask)[0]
                if value > result[0]:
                    result = (value, mask)
        memo[nodes] = result
        return result

    nodes = (1 << (m + n)) - 1
    value = best(nodes)[0]
    groups: list[Group] = []
    while nodes:
        mask = memo[nodes][1]
        if mask:
            rows = tuple(i for i in range(m) if mask >> i & 1)
            cols = tuple(j for j in range(n) if mask >> (m + j) & 1)
            groups.append((rows, cols))
            nodes &= ~mask
        else:
            nodes &= ~(nodes & -nodes)
    return value, groups


def _greedy(w: np.ndarray, start: list[Group] | None = None) -> tuple[int, list[Group]]:
    """Merge the two sets whose union is a biclique with the largest gain, while one gains.

    The sets start as ``start`` (whole bicliques) plus single nodes; by default as single
    nodes, which on namings reaches the optimum far more often than starting from the D = 1
    matching (whose pairs may not belong together at D = 2).
    """
    m, n = w.shape
    missing = (w == 0).astype(np.int64)
    start = start or []
    used_rows = {r for rows, _ in start for r in rows}
    used_cols = {c for _, cols in start for c in cols}
    size = len(start) + m - len(used_rows) + n - len(used_cols)
    members_r = np.zeros((size, m), dtype=np.int64)
    members_c = np.zeros((size, n), dtype=np.int64)
    for k, (rows, cols) in enumerate(start):
        members_r[k, list(rows)] = 1
        members_c[k, list(cols)] = 1
    k = len(start)
    for r in range(m):
        if r not in used_rows:
            members_r[k, r] = 1
            k += 1
    for c in range(n):
        if c not in used_cols:
            members_c[k, c] = 1
            k += 1
    # Gains and non-edges between sets are additive over unions, so after merging t into s
    # only row and column s change: update them instead of recomputing the products.
    cross = members_r @ w @ members_c.T  # weight from set s's rows to set t's columns
    gaps = members_r @ missing @ members_c.T  # non-edges between them
    gain = cross + cross.T
    gaps = gaps + gaps.T
    score = np.where(gaps > 0, 0, gain)
    np.fill_diagonal(score, 0)
    rows_of = [set(np.flatnonzero(r).tolist()) for r in members_r]
    cols_of = [set(np.flatnonzero(c).tolist()) for c in members_c]
    alive = np.ones(len(rows_of), dtype=bool)
    while True:
        s, t = np.unravel_index(np.argmax(score), score.shape)
        if score[s, t] <= 0:
            break
        rows_of[s] |= rows_of[t]
        cols_of[s] |= cols_of[t]
        rows_of[t], cols_of[t] = set(), set()
        gain[s] += gain[t]
        gaps[s] += gaps[t]
        gain[:, s], gaps[:, s] = gain[s], gaps[s]
        alive[t] = False
        score[s] = score[:, s] = np.where((gaps[s] > 0) | ~alive, 0, gain[s])
        score[t] = score[:, t] = 0
        score[s, s] = 0
    groups = []
    value = 0
    for rows_set, cols_set in zip(rows_of, cols_of, strict=True):
        if rows_set and cols_set:
            r, c = sorted(rows_set), sorted(cols_set)
            groups.append((tuple(r), tuple(c)))
            value += int(w[np.ix_(r, c)].sum())
    return value, groups
