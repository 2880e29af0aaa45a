"""The task data: written by publish through label_config.tasks, read back by the same module."""

from __future__ import annotations

import numpy as np
import pytest

import ls_backend.manager.client
from label_config.tasks import (
    BOARD,
    DESCRIPTORS,
    PER_MAP,
    activation_ids,
    board_task,
    decode_embedding,
    encode_embedding,
    map_entries,
    map_fields,
    maps_of_task,
    owner_fields,
    per_map_task,
    task_key,
    task_kind,
)
from ls_backend.manager.publish import board_tasks, load_bundle, per_map_tasks, publish
from tests.ls_backend.bundle_factory import make_bundle
from tests.xnn_training.bundle.test_bundle_geometry import strip_geometry
from xnn_training.maps.hot_spot import MAP_GEOMETRY


def row(aid: str = "img:x1", **changed) -> dict:
    values = {"activation_id": aid, "image_id": "img", "x_feature": 1, "share": 0.5, "rank": 1}
    values |= {name: 0.25 for name in MAP_GEOMETRY}
    return values | changed


def test_a_board_reads_back_what_was_written() -> None:
    embedding = np.arange(12, dtype=np.float32)
    maps = [map_fields(row("a:x1", embedding=encode_embedding(embedding))), map_fields(row("b:x2"))]
    owner = owner_fields("ann@example.org", 7, space="s", where=10)
    data = board_task("jay", maps, ["<img a>", "<img b>"], owner=owner)
    assert task_kind(data) == BOARD
    assert task_key(data) == "board:jay"
    assert activation_ids(data) == ["a:x1", "b:x2"]
    assert [label for label, _ in map_entries(data)] == [
        "data.activations[0]",
        "data.activations[1]",
    ]
    first, second = maps_of_task(data)
    assert (first.activation_id, first.category, first.x_feature) == ("a:x1", "jay", 1)
    assert first.heat == (0.25, 0.25)
    assert first.descriptors == (0.5, 1.0) + (0.25,) * (len(DESCRIPTORS) - 2)
    np.testing.assert_array_equal(first.embedding, embedding)
    assert (first.space, first.where) == ("s", 10)
    assert second.embedding is None
    assert second.space is None
    with pytest.raises(ValueError, match="thumbnails"):
        board_task("jay", maps, ["<img a>"], owner=owner)


def test_a_per_map_task_reads_back_what_was_written() -> None:
    data = per_map_task(
        map_fields(row()), category="jay", overlay="/o", image="/i", owner=owner_fields("a@b.c")
    )
    assert task_kind(data) == PER_MAP
    assert task_key(data) == activation_ids(data)[0] == "img:x1"
    (info,) = maps_of_task(data)
    assert (info.activation_id, info.category, info.heat) == ("img:x1", "jay", (0.25, 0.25))


def test_which_kind_is_decided_once() -> None:
    assert task_kind({"items": []}) == task_kind({"activations": []}) == BOARD
    assert task_kind({"activation_id": "a"}) == PER_MAP
    with pytest.raises(ValueError, match="neither"):
        task_kind({"category": "jay"})
    with pytest.raises(ValueError, match="object"):
        task_kind([])


def test_the_descriptors_leave_the_hot_spot_to_the_embedding() -> None:
    assert not {"hot_x", "hot_y", "hot_area", "hot_spread"} & set(DESCRIPTORS)
    assert decode_embedding(encode_embedding(np.ones(3))).tolist() == [1.0, 1.0, 1.0]


def test_publish_builds_the_same_tasks_from_an_old_bundle(tmp_path) -> None:
    new = make_bundle(tmp_path / "new", embeddings=True)
    old = strip_geometry(make_bundle(tmp_path / "old", embeddings=True))
    lines: list[str] = []
    tables = {"new": load_bundle(new), "old": load_bundle(old, warn=lines.append)}
    assert len(lines) == 1
    assert "geometry" in lines[0]
    for make in (board_tasks, per_map_tasks):
        made = {
            name: make(table, root, files_root=tmp_path, annotator="a@example.org")
            for (name, table), root in zip(tables.items(), (new, old), strict=True)
        }
        for a, b in zip(made["new"], made["old"], strict=True):
            maps_a, maps_b = maps_of_task(a["data"]), maps_of_task(b["data"])
            for m, n in zip(maps_a, maps_b, strict=True):
                assert m.heat == pytest.approx(n.heat, abs=1e-4)
                assert m.descriptors == pytest.approx(n.descriptors, rel=1e-4, abs=1e-5)


class _Reached(Exception):
    """Raised by the stand-in Manager: publish got as far as talking to Label Studio."""


def test_an_old_bundle_publishes_with_one_warning(tmp_path, monkeypatch) -> None:
    def manager(*args, **kwargs):
        raise _Reached

    monkeypatch.setattr(ls_backend.manager.client, "Manager", manager)
    bundle = strip_geometry(make_bundle(tmp_path / "bundle", embeddings=True))
    lines: list[str] = []
    with pytest.raises(_Reached):
        publish(bundle, ["a@example.org"], url="http://127.0.0.1:9", token="t",
                files_root=tmp_path, progress=lines.append)  # fmt: skip
    (warning,) = lines
    assert warning.startswith("warning: ")
    assert "geometry" in warning
