"""The backend's naming logic, on its own (no Flask, no server): maps, the older proposal
(heat_proposal) and the drag metric (moves)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ls_backend.backend.heat_proposal import (
    MIN_STATUS_HISTORY,
    board_proposal,
    fit_status_guess,
    per_map_proposal,
)
from ls_backend.backend.moves import moves_needed
from ls_backend.backend.naming import (
    DESCRIPTORS,
    MapInfo,
    Naming,
    describe_map,
    encode_embedding,
    maps_of_task,
    off_parts,
)
from xnn_training.bundle.embeddings import GEOMETRY


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


def blob(centre: tuple[int, int], width: float, size: int = 32) -> np.ndarray:
    rows, cols = np.indices((size, size))
    return np.exp(-((cols - centre[0]) ** 2 + (rows - centre[1]) ** 2) / (2 * width**2))


def test_describe_map_tells_focused_from_diffuse_maps() -> None:
    focused = describe_map(blob((8, 24), 1.5))
    diffuse = describe_map(blob((16, 16), 8.0) + blob((2, 2), 8.0))
    assert focused["heat_x"] == pytest.approx(8 / 31, abs=0.01)
    assert focused["heat_y"] == pytest.approx(24 / 31, abs=0.01)
    for name in ("hot_area", "hot_spread", "heat_spread"):
        assert focused[name] < diffuse[name]
    assert focused["peak"] > diffuse["peak"]
    assert focused["hot_regions"] == 1
    two_spots = describe_map(blob((4, 4), 1.0) + blob((26, 26), 1.0))
    assert two_spots["hot_regions"] == 2
    # The negative part of a map is ignored; an empty map is centred and empty.
    assert describe_map(blob((8, 24), 1.5) - 0.5 * blob((24, 8), 1.5)) == pytest.approx(
        focused, abs=0.05
    )
    assert describe_map(np.zeros((4, 4)))["hot_area"] == 0.0
    with pytest.raises(ValueError, match="2-d"):
        describe_map(np.zeros(5))


def test_maps_of_task_reads_descriptors_when_complete() -> None:
    looks = dict.fromkeys(DESCRIPTORS, 0.5)
    entry = {"activation_id": "a", "x_feature": 1, "descriptors": looks}
    (full,) = maps_of_task({"category": "jay", "activations": [entry]})
    assert full.descriptors == (0.5,) * len(DESCRIPTORS)
    # Tasks of an older publish lack some: the backend works without them.
    partial = {**entry, "descriptors": {"share": 0.5}}
    assert maps_of_task({"category": "jay", "activations": [partial]})[0].descriptors is None
    with pytest.raises(ValueError, match="descriptors"):
        maps_of_task({"category": "jay", "activations": [{**entry, "descriptors": [1, 2]}]})


@pytest.mark.parametrize("where", [True, 3.5, "19", -1, len(GEOMETRY) - 1, 41])
def test_maps_of_task_refuses_where_columns_that_do_not_fit_the_embedding(where) -> None:
    entry = {"activation_id": "a", "x_feature": 1, "embedding": encode_embedding(np.zeros(40))}
    data = {"category": "jay", "embedding_space": "s", "activations": [entry]}
    assert maps_of_task({**data, "embedding_where": 19})[0].where == 19
    assert maps_of_task(data)[0].where is None  # an older publish: the geometry alone
    with pytest.raises(ValueError, match="embedding_where"):
        maps_of_task({**data, "embedding_where": where})


def test_off_parts_is_the_last_part_column_where_there_are_parts() -> None:
    values = np.arange(40, dtype=np.float32) / 40
    entry = {"activation_id": "a", "x_feature": 1, "embedding": encode_embedding(values)}
    data = {"category": "jay", "embedding_space": "s", "activations": [entry, entry]}
    with_parts = maps_of_task({**data, "embedding_where": len(GEOMETRY) + 3})
    np.testing.assert_allclose(off_parts(with_parts), [values[-1]] * 2)
    assert off_parts(maps_of_task({**data, "embedding_where": len(GEOMETRY)})) is None
    assert off_parts(maps_of_task(data)) is None  # an older publish: no part columns


def looking(aid: str, spread: float, category: str = "jay", x: int = 0) -> MapInfo:
    """A map whose look is all in its spread (the other descriptors are constant)."""
    values = {name: 0.5 for name in DESCRIPTORS} | {"heat_spread": spread, "hot_area": spread}
    return MapInfo(aid, category, x, (0.5, 0.5), tuple(values[n] for n in DESCRIPTORS))


def test_the_proposal_learns_what_this_annotator_leaves_unsorted_or_discards() -> None:
    # On earlier boards (other categories) this annotator named focused maps, left middling
    # ones unsorted and discarded the most diffuse ones.
    rng = np.random.default_rng(0)
    earlier = []
    for i, spread in enumerate(rng.uniform(0, 0.9, 120)):
        status = "named" if spread < 0.3 else "unnamed" if spread < 0.6 else "discarded"
        concept = "crown" if status == "named" else ""
        earlier.append(Naming(looking(f"old{i}", spread, "finch", i % 2), concept, status))
    board = [looking("sharp1", 0.1), looking("sharp2", 0.15), looking("vague", 0.45)]
    board += [looking("noise", 0.8), MapInfo("unknown-look", "jay", 0, (0.5, 0.5))]
    buckets, _ = board_proposal(board, earlier, groups=12)
    assert buckets["_"] == ["vague"]
    assert buckets["discard"] == ["noise"]
    assert sorted(buckets["g1"]) == ["sharp1", "sharp2", "unknown-look"]
    # Without history, or with a status seen too rarely to learn, every map is grouped.
    assert board_proposal(board, [], groups=12)[0]["_"] == []
    few = earlier[: MIN_STATUS_HISTORY - 1]
    assert fit_status_guess([n for n in few if n.status == "named"] + few[:1]) is None


def test_descriptors_of_an_older_length_are_ignored_not_fitted() -> None:
    # A store written before the geometry moved to the embedding holds 8-value descriptors;
    # mixing them with today's would make the status model fail on every /predict.
    rng = np.random.default_rng(1)
    earlier = []
    for i, spread in enumerate(rng.uniform(0, 0.9, 120)):
        status = "named" if spread < 0.45 else "discarded"
        earlier.append(Naming(looking(f"new{i}", spread, "finch", 0), "crown", status))
    older = MapInfo("old", "finch", 0, (0.5, 0.5), (0.1,) * (len(DESCRIPTORS) + 2))
    earlier.append(Naming(older, "", "discarded"))
    guess = fit_status_guess(earlier)
    assert guess is not None
    assert guess([looking("sharp", 0.1), older]) == ["named", "named"]
