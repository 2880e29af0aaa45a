"""D-family matchings against hand-computed cases, brute force over all partitions, and scipy."""

from __future__ import annotations

from functools import cache
from itertools import permutations

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment
from sklearn.metrics.cluster import contingency_matrix

import analysis.measures.matching
from analysis.measures.matching import intersection_graph, match_d1, match_d2, match_d_family


@pytest.fixture(params=["search", "program"])
def solver(request, monkeypatch):
    """Run D = 2 tests through both exact paths: exhaustive search and the LP / integer
    program (forced by making no component "small")."""
    if request.param == "program":
        monkeypatch.setattr(analysis.measures.matching, "_SMALL_NODES", 0)
    return request.param


def brute_force_d_family(w: np.ndarray, d: int) -> int:
    """Best D-family weight straight from the definition: over every partition of the nodes,
    keep those whose parts induce connected subgraphs of diameter <= d (networkx), and take the
    heaviest. Partitions are enumerated by the subset recursion best(S) = max over the part B
    holding S's first node of weight(B) + best(S - B), which visits every partition."""
    m, n = w.shape
    graph = nx.Graph()
    graph.add_nodes_from(range(m + n))
    for i, j in zip(*np.nonzero(w), strict=True):
        graph.add_edge(int(i), m + int(j), weight=int(w[i, j]))
    nodes = list(range(m + n))

    @cache
    def part_weight(part: frozenset[int]) -> int | None:
        sub = graph.subgraph(part)
        if not nx.is_connected(sub) or nx.diameter(sub) > d:
            return None
        return sum(data["weight"] for _, _, data in sub.edges(data=True))

    @cache
    def best(rest: frozenset[int]) -> int:
        if not rest:
            return 0
        first = min(rest)
        others = sorted(rest - {first})
        result = -1
        for mask in range(1 << len(others)):
            part = frozenset([first] + [others[k] for k in range(len(others)) if mask >> k & 1])
            value = part_weight(part)
            if value is not None:
                result = max(result, value + best(rest - part))
        return result

    return best(frozenset(nodes))


def brute_force_d1(w: np.ndarray) -> int:
    m, n = w.shape
    if m > n:
        w = w.T
        m, n = n, m
    return max(sum(int(w[i, p[i]]) for i in range(m)) for p in permutations(range(n), m))


weights_matrices = st.tuples(st.integers(1, 5), st.integers(1, 5)).flatmap(
    lambda shape: st.lists(
        st.sampled_from([0, 0, 0, 1, 2, 3, 5, 8]),
        min_size=shape[0] * shape[1],
        max_size=shape[0] * shape[1],
    ).map(lambda values: np.array(values, dtype=np.int64).reshape(shape))
)


def test_k22_scores_all_edges_at_d2_and_a_matching_at_d1():
    w = np.full((2, 2), 5)
    assert match_d1(w).weight == 10
    d2 = match_d2(w)
    assert d2.weight == 20
    assert d2.optimal
    assert d2.groups == (((0, 1), (0, 1)),)


def test_paper_case_one_concept_matched_to_three():
    # 'eye' on the left shares activations with 'head', 'eye' and 'head and wing' on the right.
    w = np.array([[4, 6, 2], [0, 0, 0]])
    assert match_d1(w).weight == 6
    d2 = match_d2(w)
    assert d2.weight == 12
    assert d2.groups == (((0,), (0, 1, 2)),)


def test_two_sides_refined_at_once_but_not_chained(solver):
    # Left 0 splits into right 0,1; right 2 splits into left 1,2; left 1 also touches right 1.
    # Taking the chain 0-1, 1-1 would make a path of diameter 3: forbidden at D = 2.
    w = np.array([[5, 4, 0], [0, 1, 3], [0, 0, 2]])
    d2 = match_d2(w)
    assert d2.weight == 14  # {L0,R0,R1} = 9, {L1,L2,R2} = 5
    assert d2.groups == (((0,), (0, 1)), ((1, 2), (2,)))
    assert brute_force_d_family(w, 2) == 14
    assert match_d1(w).weight == 5 + 1 + 2 == brute_force_d1(w)


def test_path_of_four_nodes_is_not_one_set():
    # L0-R0, L0-R1, L1-R1: the path L1-R1-L0-R0 has diameter 3, so its 9 is out of reach.
    w = np.array([[3, 3], [0, 3]])
    assert match_d2(w).weight == 6
    assert brute_force_d_family(w, 2) == 6


def test_empty_and_edgeless_graphs():
    for w in (np.zeros((0, 0), int), np.zeros((3, 2), int), np.zeros((1, 0), int)):
        assert match_d1(w).weight == 0
        assert match_d2(w).weight == 0
        assert match_d2(w).optimal


def test_intersection_graph_is_the_contingency_of_both_named():
    rng = np.random.default_rng(0)
    a = rng.integers(-1, 4, 200)
    b = rng.integers(-1, 3, 200)
    w = intersection_graph(a, b, 4, 3)
    both = (a >= 0) & (b >= 0)
    np.testing.assert_array_equal(w, contingency_matrix(a[both], b[both]))


@settings(max_examples=150, deadline=None)
@given(weights_matrices)
def test_d1_equals_brute_force_and_scipy(w):
    result = match_d1(w)
    rows, cols = linear_sum_assignment(w, maximize=True)
    assert result.weight == int(w[rows, cols].sum()) == brute_force_d1(w)
    assert result.weight == sum(int(w[r[0], c[0]]) for r, c in result.groups)


@settings(max_examples=40, deadline=None)
@given(weights_matrices.filter(lambda w: w.size <= 16))
def test_d1_equals_the_definition(w):
    assert match_d1(w).weight == brute_force_d_family(w, 1)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(weights_matrices.filter(lambda w: w.size <= 16))
def test_d2_equals_brute_force_small(solver, w):
    _check_d2_against_brute_force(w)


@pytest.mark.slow
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(weights_matrices)
def test_d2_equals_brute_force_up_to_5x5(solver, w):
    _check_d2_against_brute_force(w)


def test_d2_equals_brute_force_dense_5x5(solver):
    rng = np.random.default_rng(7)
    for _ in range(4):
        w = rng.integers(0, 6, (5, 5)) * (rng.random((5, 5)) < 0.7)
        _check_d2_against_brute_force(w)


def _check_d2_against_brute_force(w):
    result = match_d2(w)
    assert result.optimal
    assert result.weight == brute_force_d_family(w, 2)
    # The sets are disjoint bicliques and their weights add up to the reported weight.
    seen_rows, seen_cols, total = set(), set(), 0
    for rows, cols in result.groups:
        assert not seen_rows & set(rows)
        assert not seen_cols & set(cols)
        seen_rows |= set(rows)
        seen_cols |= set(cols)
        block = w[np.ix_(rows, cols)]
        assert (block > 0).all()
        total += int(block.sum())
    assert total == result.weight
    assert result.weight >= match_d1(w).weight


@settings(max_examples=60, deadline=None)
@given(weights_matrices)
def test_matching_is_symmetric_under_transpose(w):
    assert match_d1(w).weight == match_d1(w.T).weight
    assert match_d2(w).weight == match_d2(w.T).weight


def test_limits_give_an_unproven_answer_with_a_bound(monkeypatch):
    monkeypatch.setattr(analysis.measures.matching, "_SMALL_NODES", 0)
    rng = np.random.default_rng(3)
    w = rng.integers(0, 9, (8, 8)) * (rng.random((8, 8)) < 0.5)
    exact = match_d2(w)
    limited = match_d2(w, max_paths=1)
    assert exact.optimal
    assert not limited.optimal
    assert limited.weight <= exact.weight <= limited.upper_bound


def test_bad_weights_are_rejected():
    with pytest.raises(ValueError, match="non-negative"):
        match_d2(np.array([[1, -1]]))
    with pytest.raises(ValueError, match="2-D"):
        match_d1(np.array([1, 2]))
    with pytest.raises(ValueError, match="whole numbers"):
        match_d2(np.array([[0.5]]))
    with pytest.raises(ValueError, match="d must be 1 or 2"):
        match_d_family(np.ones((1, 1), int), 3)


def test_integer_program_closes_fractional_gaps(monkeypatch):
    """Where the LP relaxation is fractional and no greedy start meets its bound, the
    branch-and-bound must still find the optimum (checked against exhaustive search)."""
    calls = {"integer": 0}
    real_milp = analysis.measures.matching.milp

    def counting_milp(*args, **kwargs):
        if "integrality" in kwargs:
            calls["integer"] += 1
        return real_milp(*args, **kwargs)

    monkeypatch.setattr(analysis.measures.matching, "milp", counting_milp)
    monkeypatch.setattr(analysis.measures.matching, "_greedy", lambda w, start=None: (0, []))
    monkeypatch.setattr(analysis.measures.matching, "_SMALL_NODES", 0)
    rng = np.random.default_rng(11)
    for _ in range(12):
        w = rng.integers(1, 9, (5, 6)) * (rng.random((5, 6)) < 0.5)
        expected = analysis.measures.matching._packing_search(w)
        assert expected is not None
        result = match_d2(w)
        assert result.optimal
        assert result.weight == expected[0]
    assert calls["integer"] > 0
