"""label_config.read_label_studio_export: the rules of docs/formats.md (the wire format is
spelled out literally here, as Label Studio exports it)."""

from __future__ import annotations

import json

import pytest

from label_config import NAMINGS_COLUMNS, ExportError, read_label_studio_export


def board_task(task_id=1, annotations=(), ids=("a:x0", "b:x0", "c:x1", "d:x1", "e:x2")):
    return {
        "id": task_id,
        "data": {
            "category": "jay",
            "annotator": "ann@example.org",
            "items": [{"id": i, "html": "<img>"} for i in ids],
            "activations": [{"activation_id": i, "image_id": i[0], "x_feature": 0} for i in ids],
        },
        "annotations": list(annotations),
    }


def ranker(buckets):
    return {
        "type": "ranker",
        "from_name": "groups",
        "to_name": "maps",
        "value": {"ranker": buckets},
    }


def name(group, *texts):
    return {
        "type": "textarea",
        "from_name": f"g{group}_name",
        "to_name": "maps",
        "value": {"text": list(texts)},
    }


def annotation(result, ann_id=10, cancelled=False, updated="2026-01-01T00:00:00Z"):
    return {"id": ann_id, "result": result, "was_cancelled": cancelled, "updated_at": updated}


def per_map_task(task_id, activation_id, annotations=()):
    return {
        "id": task_id,
        "data": {
            "annotator": "ann@example.org",
            "activation_id": activation_id,
            "image_id": activation_id.split(":")[0],
            "category": "jay",
            "x_feature": 0,
            "overlay": "/o.png",
            "image": "/i.png",
        },
        "annotations": list(annotations),
    }


def taxonomy(*paths):
    return {
        "type": "taxonomy",
        "from_name": "concept",
        "value": {"taxonomy": [list(p) for p in paths]},
    }


def discard():
    return {"type": "choices", "from_name": "discard", "value": {"choices": ["discard"]}}


def rows(table):
    return {r.activation_id: (r.concept, r.status) for r in table.itertuples()}


def test_board_rules() -> None:
    result = [
        ranker({"_": ["e:x2"], "g1": ["a:x0", "b:x0"], "g3": ["c:x1"], "discard": ["d:x1"]}),
        name(1, "beak", "  eye "),
        name(3, ""),
    ]
    table = read_label_studio_export([board_task(annotations=[annotation(result)])])
    assert tuple(table.columns) == NAMINGS_COLUMNS
    assert rows(table) == {
        "a:x0": ("eye", "named"),
        "b:x0": ("eye", "named"),
        "c:x1": ("group 3", "named"),
        "d:x1": ("", "discarded"),
        "e:x2": ("", "unnamed"),
    }
    assert set(table["annotator"]) == {"ann@example.org"}
    assert set(table["category"]) == {"jay"}


def test_unannotated_board_and_absent_items_are_unnamed() -> None:
    table = read_label_studio_export([board_task()])
    assert set(table["status"]) == {"unnamed"}
    assert len(table) == 5
    partial = read_label_studio_export(
        [board_task(annotations=[annotation([ranker({"g1": ["a:x0"]})])])]
    )
    assert rows(partial)["b:x0"] == ("", "unnamed")
    assert rows(partial)["a:x0"] == ("group 1", "named")


def test_per_map_rules() -> None:
    tasks = [
        per_map_task(1, "a:x0", [annotation([taxonomy(["bird", "eye"], ["wing"])])]),
        per_map_task(2, "b:x0", [annotation([taxonomy(["eye"]), discard()], ann_id=11)]),
        per_map_task(3, "c:x0", [annotation([], ann_id=12)]),
        per_map_task(4, "d:x0"),
    ]
    assert rows(read_label_studio_export(tasks)) == {
        "a:x0": ("eye", "named"),
        "b:x0": ("", "discarded"),
        "c:x0": ("", "unnamed"),
        "d:x0": ("", "unnamed"),
    }


def test_cancelled_ignored_and_last_updated_wins_with_a_warning() -> None:
    skipped = annotation([taxonomy(["wing"])], ann_id=1, cancelled=True, updated="2026-09-09")
    old = annotation([taxonomy(["beak"])], ann_id=2, updated="2026-01-01T00:00:00Z")
    new = annotation([taxonomy(["eye"])], ann_id=3, updated="2026-02-01T00:00:00Z")
    assert rows(read_label_studio_export([per_map_task(1, "a:x0", [skipped])])) == {
        "a:x0": ("", "unnamed")
    }
    with pytest.warns(UserWarning, match=r"task 7: 2 annotations .*updated last \(3\)"):
        table = read_label_studio_export([per_map_task(7, "a:x0", [new, skipped, old])])
    assert rows(table) == {"a:x0": ("eye", "named")}


def test_reads_a_file(tmp_path) -> None:
    path = tmp_path / "export.json"
    path.write_text(json.dumps([per_map_task(1, "a:x0", [annotation([taxonomy(["eye"])])])]))
    assert rows(read_label_studio_export(path)) == {"a:x0": ("eye", "named")}
    assert rows(read_label_studio_export(str(path))) == {"a:x0": ("eye", "named")}


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({"id": 5}, r"task 5: missing field 'data'"),
        (
            board_task(5, [annotation([ranker({"g1": ["zz:x9"]})], ann_id=77)]),
            r"task 5 annotation 77: activation ids not in the task's items: zz:x9",
        ),
        (
            board_task(5, [annotation([{**name(1, "x"), "from_name": "colour"}], ann_id=77)]),
            r"task 5 annotation 77: unknown control 'colour'",
        ),
        (
            board_task(5, [annotation([{**ranker({}), "type": "choices"}], ann_id=77)]),
            r"task 5 annotation 77: control 'groups' must give a ranker result, got 'choices'",
        ),
        (
            board_task(5, [annotation([ranker({"g1": ["a:x0"], "g2": ["a:x0"]})], ann_id=77)]),
            r"in more than one bucket",
        ),
        (
            per_map_task(5, "a:x0", [{"id": 77}]),
            r"task 5 annotation 77: missing field 'result'",
        ),
        (
            per_map_task(
                5, "a:x0", [annotation([{"type": "taxonomy", "from_name": "concept"}], 77)]
            ),
            r"task 5 annotation 77 result\[0\]: missing field 'value'",
        ),
        ({"id": 5, "data": {"annotator": "a", "category": "c"}}, r"neither 'items'"),
    ],
)
def test_malformed_exports_name_task_and_annotation(task, message) -> None:
    with pytest.raises(ExportError, match=message):
        read_label_studio_export([task])


def test_not_a_list(tmp_path) -> None:
    path = tmp_path / "export.json"
    path.write_text("{}")
    with pytest.raises(ExportError, match="expected a JSON list"):
        read_label_studio_export(path)
    with pytest.raises(TypeError, match="source must be a path or a list"):
        read_label_studio_export(42)
