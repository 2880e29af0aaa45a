"""The backend's naming logic, on its own (no Flask, no server)."""

from __future__ import annotations

import itertools

import pytest

from ls_backend.naming import MapInfo, Naming, board_proposal, moves_needed, per_map_proposal


def m(aid: str, x: int, heat=(0.2, 0.2), category="jay") -> MapInfo:
    return MapInfo(aid, category, x, heat)


def test_board_groups_by_x_feature_and_splits_far_heat() -> None:
    maps = [
        m("a", 0),
        m("b", 0, (0.25, 0.2)),
        m("c", 1),
        m("d", 2, (0.1, 0.1)),
        m("e", 2, (0.9, 0.9)),
    ]
    buckets, names = board_proposal(maps, [], groups=12)
    groups = sorted(sorted(v) for k, v in buckets.items() if k.startswith("g"))
    assert groups == [["a", "b"], ["c"], ["d"], ["e"]]
    assert buckets["_"] == []
    assert buckets["discard"] == []
    assert names == {}


def test_board_overflow_goes_to_unsorted_and_names_come_from_history() -> None:
    maps = [m(f"i{i}", i) for i in range(5)]
    earlier = [Naming(m("old", 3), "eye", "named"), Naming(m("old2", 4), "", "discarded")]
    buckets, names = board_proposal(maps, earlier, groups=4)
    assert len(buckets["_"]) == 1
    named_bucket = next(k for k, v in buckets.items() if v == ["i3"])
    assert names == {int(named_bucket[1:]): "eye"}


def test_per_map_proposal_needs_a_similar_named_map() -> None:
    target = m("t", 1, (0.5, 0.5))
    assert per_map_proposal(target, []) is None
    far = Naming(m("f", 1, (0.95, 0.95)), "tail", "named")
    other_feature = Naming(m("o", 2, (0.5, 0.5)), "wing", "named")
    other_category = Naming(m("c", 1, (0.5, 0.5), category="cardinal"), "wing", "named")
    assert per_map_proposal(target, [far, other_feature, other_category]) is None
    votes = [
        Naming(m(f"n{i}", 1, (0.5, 0.52)), c, "named")
        for i, c in enumerate(["eye", "eye", "eye", "wing"])
    ]
    concept, score = per_map_proposal(target, votes)
    assert concept == "eye"
    assert score == pytest.approx(3 / 4)


def test_moves_needed() -> None:
    goal = {"_": ["u"], "g1": ["a", "b"], "g2": ["c"], "discard": ["d"]}
    assert moves_needed(goal, goal) == 0
    assert moves_needed({"_": ["u", "a", "b", "c", "d"]}, goal) == 4
    # Group labels are interchangeable.
    assert moves_needed({"_": ["u"], "g7": ["a", "b"], "g3": ["c"], "discard": ["d"]}, goal) == 0
    # One map in the wrong group, one wrongly discarded.
    assert moves_needed({"_": ["u"], "g1": ["a", "b", "c"], "discard": ["d"]}, goal) == 1
    assert moves_needed({"g1": ["a", "b", "u"], "g2": ["c", "d"]}, goal) == 2


def test_moves_needed_matches_brute_force() -> None:
    ids = list("abcdef")
    goal = {"g1": ["a", "b", "c"], "g2": ["d", "e"], "_": ["f"]}
    start = {"g1": ["a", "d"], "g2": ["b", "c", "e"], "g3": ["f"]}
    best = len(ids)
    for perm in itertools.permutations(["g1", "g2", "g3"]):
        relabel = dict(zip(["g1", "g2", "g3"], perm, strict=True))
        where = {i: relabel[b] for b, v in start.items() for i in v}
        target = {i: b for b, v in goal.items() for i in v}
        best = min(best, sum(where[i] != target[i] for i in ids))
    assert moves_needed(start, goal) == best
