"""The per-annotator model and its wiring in the backend (no Label Studio; see
test_proposals_live.py for the same through a real server)."""

from __future__ import annotations

import numpy as np
import pytest

from label_config import BOARD_DISCARD, UNNAMED, UNSORTED
from ls_backend.backend.annotator_model import (
    MIN_NAMINGS,
    OFF_PARTS,
    cold_start,
    fit_annotator_model,
    label_of,
    propose,
)
from ls_backend.backend.app import Backend, BackendSettings
from ls_backend.backend.naming import decode_embedding, encode_embedding, maps_of_task
from ls_backend.backend.store import NamingStore
from tests.ls_backend.backend.fake_label_studio import PROJECT, FakeLabelStudio
from tests.ls_backend.helpers import group_names
from tests.ls_backend.helpers import ranker as board_result
from xnn_training.bundle.embeddings import GEOMETRY

CLASSES = ["discarded", "named:beak", "named:wing", "unnamed"]
CONCEPTS = ["beak", "wing"]


def test_each_map_starts_where_it_most_likely_ends_ties_unsorted() -> None:
    p = np.array(
        [
            [0.0, 0.6, 0.1, 0.3],  # beak
            [0.0, 0.4, 0.2, 0.4],  # beak ties with unsorted: unsorted
            [0.5, 0.1, 0.1, 0.3],  # discard
            [0.05, 0.1, 0.45, 0.4],  # wing; the namer says beak, a larger group's name: none
        ]
    )
    naming = np.array([[0.9, 0.1], [0.5, 0.5], [0.5, 0.5], [0.62, 0.38]])  # beak, wing
    proposal = propose(
        ["a", "b", "c", "d"], p, CLASSES, naming=naming, concepts=CONCEPTS, groups=12
    )
    assert proposal.buckets[UNSORTED] == ["b"]
    assert proposal.buckets[BOARD_DISCARD] == ["c"]
    groups = {k: v for k, v in proposal.buckets.items() if k.startswith("g")}
    assert sorted(groups.values()) == [["a"], ["d"]]
    beak = next(k for k, v in groups.items() if v == ["a"])
    assert proposal.names == {int(beak[1:]): "beak"}
    # No room for a second group: the smaller concept stays unsorted.
    one = propose(
        ["a", "e", "d"],
        p[[0, 0, 3]],
        CLASSES,
        naming=naming[[0, 0, 3]],
        concepts=CONCEPTS,
        groups=1,
    )
    assert one.buckets["g1"] == ["a", "e"]
    assert one.buckets[UNSORTED] == ["d"]


def test_a_name_needs_the_namers_confidence_and_the_full_models_word() -> None:
    p = np.array([[0.0, 0.7, 0.1, 0.2], [0.0, 0.1, 0.7, 0.2]])
    sure = propose(
        ["a", "b"],
        p,
        CLASSES,
        naming=np.array([[0.8, 0.2], [0.1, 0.9]]),
        concepts=CONCEPTS,
        groups=12,
    )
    assert sorted(sure.names.values()) == ["beak", "wing"]
    crossed = np.array([[0.2, 0.8], [0.9, 0.1]])  # the namer contradicts the full model
    assert propose(["a", "b"], p, CLASSES, naming=crossed, concepts=CONCEPTS, groups=12).names == {}
    torn = np.array([[0.8, 0.2], [0.33, 0.34]])  # three concepts; wing only 0.34 < 0.35
    unsure = propose(["a", "b"], p, CLASSES, naming=torn, concepts=CONCEPTS, groups=12)
    assert list(unsure.names.values()) == ["beak"]


def test_names_follow_where_a_map_sits_and_stay_off_when_the_models_disagree() -> None:
    """Column 0 is the look, column 1 where the map sits. A species of the same colours: both
    models agree and both groups get their names. A species whose colours flip: the full model
    is misled by the look, the namer is not, and no group gets a wrong name."""
    rng = np.random.default_rng(0)

    def maps(n: int, beak_look: float) -> tuple[np.ndarray, list[str]]:
        beak = np.arange(n) % 2 == 0
        look = np.where(beak, beak_look, -beak_look) + rng.normal(0, 0.3, n)
        where = np.where(beak, 0.2, 0.8) + rng.normal(0, 0.05, n)
        return np.c_[look, where], ["named:beak" if b else "named:wing" for b in beak]

    history, labels = maps(60, beak_look=3.0)
    model = fit_annotator_model(history, labels, space="s", where=1)
    assert model is not None
    assert model.concepts == ["beak", "wing"]
    for beak_look, names_expected in ((3.0, ["beak", "wing"]), (-3.0, None)):
        board, truth = maps(20, beak_look=beak_look)
        ids = [f"m{i}" for i in range(len(board))]
        proposal = model.propose(ids, board, groups=12)
        named = {name: proposal.buckets[f"g{index}"] for index, name in proposal.names.items()}
        if names_expected is not None:
            assert sorted(named) == names_expected
        for name, members in named.items():
            right = sum(truth[ids.index(m)] == f"named:{name}" for m in members)
            assert right / len(members) >= 0.7, (beak_look, name, right, len(members))


def test_which_part_a_map_covers_carries_to_a_board_of_another_look() -> None:
    """The where columns (here: two parts' shares of the heat and elsewhere) decide the class:
    named after the stronger part when it holds half the heat, else unnamed. The look tells the
    parts apart within a board only (its sign flips with the species). A third board of a new
    look is still read right, by the boosted trees on the where columns and by the mean."""
    rng = np.random.default_rng(0)

    def board(offset: float) -> tuple[np.ndarray, np.ndarray]:
        shares = rng.dirichlet([0.5, 0.5, 0.5], 150)
        best, top = shares[:, :2].argmax(axis=1), shares[:, :2].max(axis=1)
        labels = np.where(top < 0.5, UNNAMED, np.where(best == 0, "named:crown", "named:wing"))
        look = rng.normal(offset, 1.0, (150, 40))
        look[:, 0] += np.where(best == 0, 2.0, -2.0) * np.sign(offset + 0.5)
        return np.hstack([look, shares]).astype(np.float32), labels

    (x1, y1), (x2, y2), (x3, y3) = board(0.0), board(3.0), board(-3.0)
    x, y = np.vstack([x1, x2]), np.concatenate([y1, y2])
    model = fit_annotator_model(x, y, space="s", where=3, parts=3)
    classes = np.array(model.classes)
    boosted = classes[model.boost.predict_proba(x3[:, -3:]).argmax(axis=1)]
    assert (boosted == y3).mean() >= 0.95
    assert (classes[model.probabilities(x3).argmax(axis=1)] == y3).mean() >= 0.95
    # Without part shares (a data set that locates no parts) the boosted trees stay out: on
    # the geometry and descriptors alone they grouped worse than the extra trees alone.
    plain = fit_annotator_model(x, y, space="s", where=3)
    assert plain.boost is None
    assert np.array_equal(plain.probabilities(x3), plain.forest.predict_proba(x3))


def test_no_model_without_a_basis() -> None:
    x = np.zeros((MIN_NAMINGS - 1, 3))
    assert fit_annotator_model(x, ["unnamed"] * len(x), space="s") is None
    x = np.zeros((MIN_NAMINGS, 3))
    assert fit_annotator_model(x, ["named:beak"] * len(x), space="s") is None


def test_cold_start_groups_by_x_feature_and_leaves_outliers_unsorted() -> None:
    rng = np.random.default_rng(0)
    embeddings = rng.normal(0, 0.1, (10, 4))
    embeddings[4] += 5  # far from its X-feature's others
    ids = [f"m{i}" for i in range(10)]
    heats = [(0.2, 0.2)] * 5 + [(0.8, 0.8)] * 4 + [(0.5, 0.1)]
    proposal = cold_start(ids, embeddings, [0] * 5 + [1] * 5, heats, groups=12)
    assert "m4" in proposal.buckets[UNSORTED]
    assert "m9" in proposal.buckets[UNSORTED]  # X-feature 1 fired elsewhere: group of one
    assert proposal.names == {}


def test_cold_start_leaves_maps_off_the_parts_unsorted() -> None:
    """Maps mostly off every located part (the background) start in Unsorted, and the groups
    form from the others as without them; shares under OFF_PARTS keep a map in play."""
    rng = np.random.default_rng(1)
    ids = [f"m{i}" for i in range(12)]
    embeddings = rng.normal(0, 0.1, (12, 4))
    heats = [(0.2, 0.2)] * 6 + [(0.8, 0.8)] * 6
    features = [0] * 6 + [1] * 6
    off = [0.0] * 12
    off[6:10] = [OFF_PARTS, 0.9, 1.0, 0.75]  # four of X-feature 1's maps show the background
    off[0] = OFF_PARTS - 0.01
    proposal = cold_start(ids, embeddings, features, heats, groups=12, off_parts=off)
    grouped = {
        a for bucket, members in proposal.buckets.items() if bucket.startswith("g") for a in members
    }
    assert {"m6", "m7", "m8", "m9"} <= set(proposal.buckets[UNSORTED])
    assert not grouped & {"m6", "m7", "m8", "m9"}
    # X-feature 0's maps, m0 (just under OFF_PARTS) among them, group as they do on their own.
    plain = cold_start(ids[:6], embeddings[:6], features[:6], heats[:6], groups=12)
    assert proposal.buckets["g1"] == plain.buckets["g1"]
    assert (
        plain.buckets["g1"]
        != cold_start(ids[1:6], embeddings[1:6], features[1:6], heats[1:6], groups=12).buckets["g1"]
    )  # ... which differs from how they group without m0
    everything = sorted(a for members in proposal.buckets.values() for a in members)
    assert everything == sorted(ids)  # every map once
    with pytest.raises(ValueError, match="off-part shares"):
        cold_start(ids, embeddings, features, heats, groups=12, off_parts=off[:-1])


def test_embedding_in_task_data_round_trips_and_refuses_bad_values() -> None:
    values = np.array([0.5, -1.25, 3.0], dtype=np.float32)
    assert np.array_equal(decode_embedding(encode_embedding(values)), values)
    for bad in ("not base64!", encode_embedding(np.array([np.nan])), "", 3):
        with pytest.raises(ValueError, match="'embedding'"):
            decode_embedding(bad)
    with pytest.raises(ValueError, match="finite"):
        maps_of_task(
            {"category": "c", "activation_id": "a", "x_feature": 0, "heat_x": "nan", "heat_y": 0.5}
        )


def _board(category: str, n: int, annotator_id: int = 7) -> dict:
    """A board whose maps' first embedding value tells the part (beak high, wing low)."""
    rng = np.random.default_rng(len(category))
    activations = []
    for i in range(n):
        beak = i % 2 == 0
        value = np.array([3.0 if beak else -3.0, rng.normal(), rng.normal()], np.float32)
        activations.append(
            {
                "activation_id": f"{category}_{i:03d}:x{i % 3}",
                "image_id": f"{category}_{i:03d}",
                "x_feature": i % 3,
                "heat_x": 0.3 if beak else 0.7,
                "heat_y": 0.5,
                "embedding": encode_embedding(value + (1.0 if category == "jay" else 0.0)),
            }
        )
    return {
        "category": category,
        "annotator": "ann@example.org",
        "annotator_id": annotator_id,
        "embedding_space": "space-1",
        "items": [{"id": a["activation_id"], "html": ""} for a in activations],
        "activations": activations,
    }


def _event(ls: FakeLabelStudio, annotation_id: int, data: dict, author: int) -> dict:
    """The webhook of an annotation of board ``data``, which ``ls`` now holds."""
    ids = [a["activation_id"] for a in data["activations"]]
    ranker = {"_": [], "g1": ids[0::2], "g2": ids[1::2]}
    result = board_result(ranker) + group_names({1: "beak", 2: "wing"})
    task = {"id": annotation_id, "data": data}
    ls.annotate(annotation_id, task, result, completed_by=author)
    return {
        "action": "ANNOTATION_CREATED",
        "annotation": {"id": annotation_id, "project": 3, "completed_by": author, "result": result},
        "task": task,
        "project": {"id": 3},
    }


def _predict(backend: Backend, task_id: int, data: dict) -> dict:
    """``/predict`` of a task Label Studio holds in PROJECT."""
    backend.label_studio.add_task({"id": task_id, "data": data})
    return backend.predict({"tasks": [{"id": task_id, "data": data}], "project": PROJECT})


def _beak_group(backend: Backend, data: dict) -> list[str]:
    (answer,) = _predict(backend, 99, data)["results"]
    result = answer[0]["result"]
    names = {r["from_name"].removesuffix("_name"): r["value"]["text"][0] for r in result[1:]}
    (bucket,) = [b for b, name in names.items() if name == "beak"]
    return result[0]["value"]["ranker"][bucket]


def test_backend_carries_names_across_categories_learns_only_the_annotator(tmp_path) -> None:
    ls = FakeLabelStudio()
    backend = Backend(BackendSettings(state_dir=tmp_path), label_studio=ls)
    cardinal, jay = _board("cardinal", 40), _board("jay", 30)
    # The manager's annotation in the annotator's project teaches nothing.
    backend.webhook(_event(ls, 1, cardinal, author=1))
    assert backend.wait_idle()
    assert backend.store.namings_of("ann@example.org") == []
    for _ in range(3):  # replays change nothing
        backend.webhook(_event(ls, 2, cardinal, author=7))
    assert backend.wait_idle()
    assert len(backend.store.namings_of("ann@example.org")) == 40
    beaks = [a["activation_id"] for a in jay["activations"][0::2]]
    assert sorted(_beak_group(backend, jay)) == sorted(beaks)
    before = _predict(backend, 99, jay)
    # A per-map task of the same map gets the same concept, with its probability as score.
    one = {**jay["activations"][0], "category": "jay", "annotator": "ann@example.org"}
    one["embedding_space"] = "space-1"
    ((proposal,),) = _predict(backend, 98, one)["results"]
    assert proposal["result"][0]["value"]["taxonomy"] == [["beak"]]
    assert 0.5 < proposal["score"] <= 1
    backend.store.close()
    # A new process on the same state: the same proposal, from the store alone.
    again = Backend(BackendSettings(state_dir=tmp_path), label_studio=ls)
    assert again.wait_idle()
    assert _predict(again, 99, jay) == before
    again.store.close()


@pytest.mark.parametrize("part_shares", [0, 2])
def test_backend_boosts_only_where_the_task_data_holds_part_shares(tmp_path, part_shares) -> None:
    """The task data's ``embedding_where`` says how many embedding values are geometry and
    part shares; with part shares the backend's model has its boosted trees, without none."""
    board = _board("cardinal", 40)
    where = len(GEOMETRY) + part_shares
    for entry in board["activations"]:
        wide = np.r_[decode_embedding(entry["embedding"]), np.zeros(where, np.float32)]
        entry["embedding"] = encode_embedding(wide)
    if part_shares:
        board["embedding_where"] = where
    ls = FakeLabelStudio()
    backend = Backend(BackendSettings(state_dir=tmp_path), label_studio=ls)
    backend.webhook(_event(ls, 2, board, author=7))
    assert backend.wait_idle()
    model = backend.model("ann@example.org", "space-1")
    assert model is not None
    assert (model.boost is not None) == bool(part_shares)
    backend.store.close()


def test_store_keeps_embeddings_and_counts_versions(tmp_path) -> None:
    store = NamingStore(tmp_path / "s.sqlite3")
    data = _board("cardinal", 4)
    from ls_backend.backend.naming import Naming

    maps = maps_of_task(data)
    version = store.version("ann@example.org")
    store.put_annotation(5, 3, "ann@example.org", [Naming(maps[0], "beak", "named")], task_id=11)
    assert store.version("ann@example.org") != version
    (back,) = store.namings_of("ann@example.org")
    assert np.array_equal(back.map.embedding, maps[0].embedding)
    assert back.map.space == "space-1"
    assert store.annotated_tasks(3) == {11}
    store.delete_annotations([5])
    assert store.annotated_tasks(3) == set()
    assert label_of("named", "beak") == "named:beak"
    store.close()


def test_margin_is_chosen_by_what_earlier_boards_would_have_cost() -> None:
    """Six boards; a steady annotator names every beak: margin 0. A fickle one names the beaks
    of four small boards and none on two big ones: a model fitted without one of the big
    boards groups its beaks, which they leave unsorted; the cross-validation over boards finds
    that a margin would have saved those drags."""
    rng = np.random.default_rng(0)
    sizes = [40, 40, 40, 40, 80, 80]
    boards = [f"bird{i}" for i, n in enumerate(sizes) for _ in range(n)]
    beak = rng.random(len(boards)) < 0.5
    x = np.where(beak, 3.0, -3.0)[:, None] + rng.normal(0, 0.3, (len(boards), 2))
    steady = ["named:beak" if b else "unnamed" for b in beak]
    naming_boards = {"bird0", "bird1", "bird2", "bird3"}
    fickle = [
        "named:beak" if b and board in naming_boards else "unnamed"
        for b, board in zip(beak, boards, strict=True)
    ]
    sure = fit_annotator_model(x, steady, space="s", boards=boards)
    unsure = fit_annotator_model(x, fickle, space="s", boards=boards)
    assert sure is not None
    assert unsure is not None
    assert sure.margin == 0.0
    assert unsure.margin > 0.0
    assert fit_annotator_model(x, fickle, space="s").margin == 0.0  # no boards: no choice
