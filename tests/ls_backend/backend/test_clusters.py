"""The one single-link clusterer both proposals use."""

from __future__ import annotations

import itertools
import math

import numpy as np

from ls_backend.backend.clusters import single_link


def test_chains_join_and_far_maps_stay_apart() -> None:
    heats = [(0.1, 0.1), (0.9, 0.9), (0.3, 0.1), (0.5, 0.1), (0.9, 0.7)]
    assert single_link(heats, 0.25) == [[0, 2, 3], [1, 4]]
    assert single_link(heats, 0.1) == [[0], [1], [2], [3], [4]]
    assert single_link([], 0.25) == []


def test_a_map_without_a_heat_centre_joins_every_group() -> None:
    assert single_link([(0.1, 0.1), None, (0.9, 0.9)], 0.25) == [[0, 1, 2]]


def test_matches_connected_components_by_brute_force() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        heats = [tuple(p) for p in rng.random((int(rng.integers(1, 9)), 2))]
        groups = single_link(heats, 0.3)
        assert sorted(i for g in groups for i in g) == list(range(len(heats)))
        where = {i: n for n, g in enumerate(groups) for i in g}
        for a, b in itertools.combinations(range(len(heats)), 2):
            if math.dist(heats[a], heats[b]) <= 0.3:
                assert where[a] == where[b]
        for g in groups:  # each group is connected
            reached, frontier = {g[0]}, [g[0]]
            while frontier:
                a = frontier.pop()
                for b in g:
                    if b not in reached and math.dist(heats[a], heats[b]) <= 0.3:
                        reached.add(b)
                        frontier.append(b)
            assert reached == set(g)
