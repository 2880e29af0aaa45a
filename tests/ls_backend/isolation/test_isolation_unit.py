"""Fast checks of the manager's side: titles, attribution, status figures, a server without the
isolation (a tiny local HTTP server stands in for it: the live proofs are in test_isolation.py).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from ls_backend.manager.client import IsolationMissing, Manager
from ls_backend.manager.collect import PublishedExport, own_annotations
from ls_backend.manager.publish import MODES, parse_project_title, project_title
from ls_backend.manager.status import format_status, project_status
from tests.ls_backend.helpers import ranker, taxonomy

BOB, BOB_ID, ALICE_ID = "bob@example.org", 7, 3


def _export(tasks: list[dict], mode: str = "per-map") -> PublishedExport:
    return PublishedExport(
        project_id=11,
        title=project_title(BOB, mode),
        mode=mode,
        annotator=BOB,
        annotator_id=BOB_ID,
        tasks=tasks,
        raw=json.dumps(tasks).encode(),
        isolated=True,
    )


def _per_map_task(task_id: int, *annotations: dict) -> dict:
    data = {"annotator": BOB, "activation_id": f"a{task_id}", "image_id": "i", "category": "c"}
    return {"id": task_id, "data": data, "annotations": list(annotations)}


def _annotation(annotation_id: int, who: int, result: list, **extra) -> dict:
    stamp = f"2026-01-01T00:00:{annotation_id:02d}Z"
    return {
        "id": annotation_id,
        "completed_by": who,
        "result": result,
        "was_cancelled": False,
        "created_at": stamp,
        "updated_at": stamp,
        **extra,
    }


@pytest.mark.parametrize("mode", MODES)
def test_titles_round_trip_and_others_are_not_ours(mode) -> None:
    assert parse_project_title(project_title(BOB, mode)) == (mode, BOB)
    for title in ("xnaming board:", "my project", "xnaming boards: bob@example.org", ""):
        assert parse_project_title(title) is None


def test_only_the_annotators_own_annotations_are_kept() -> None:
    tasks = [
        _per_map_task(1, _annotation(1, BOB_ID, taxonomy("eye"))),
        _per_map_task(2, _annotation(2, BOB_ID, taxonomy("eye")), _annotation(3, ALICE_ID, [])),
        _per_map_task(3, _annotation(4, 99, taxonomy("tail"))),
    ]
    kept, foreign = own_annotations(_export(tasks), {ALICE_ID: "alice@example.org"})
    assert [[a["id"] for a in t["annotations"]] for t in kept] == [[1], [2], []]
    assert [(f.annotation_id, f.task_id, f.author) for f in foreign] == [
        (3, 2, "alice@example.org"),
        (4, 3, "user 99"),
    ]
    assert "annotation 3 on task 2 is by alice@example.org, not counted" in str(foreign[0])


def test_an_annotator_without_an_account_has_nothing_counted() -> None:
    export = _export([_per_map_task(1, _annotation(1, BOB_ID, taxonomy("eye")))])
    export.annotator_id = None
    kept, foreign = own_annotations(export, {BOB_ID: BOB})
    assert kept[0]["annotations"] == []
    assert [f.author for f in foreign] == [BOB]


def test_status_counts_done_tasks_and_never_the_foreign_ones() -> None:
    discard = [{"type": "choices", "from_name": "discard", "to_name": "overlay"}]
    discard[0]["value"] = {"choices": ["discard"]}
    tasks = [
        _per_map_task(1, _annotation(1, BOB_ID, taxonomy("eye"))),
        _per_map_task(2, _annotation(2, BOB_ID, discard)),
        _per_map_task(3, _annotation(3, BOB_ID, [])),
        _per_map_task(4, _annotation(4, BOB_ID, taxonomy("x"), was_cancelled=True)),
        _per_map_task(5, _annotation(9, ALICE_ID, taxonomy("wing"))),
        _per_map_task(6),
    ]
    row = project_status(_export(tasks), {})
    got = (row.tasks_done, row.tasks_total, row.named, row.discarded, row.unsorted)
    assert got == (3, 6, 1, 1, 1)
    assert (row.not_reached, row.concepts, row.foreign) == (3, ["eye"], 1)
    assert row.last_activity == "2026-01-01T00:00:04Z"  # skipping is activity too
    text = format_status([row])
    assert "3/6 maps" in text
    assert "1 (eye)" in text
    assert "holds 1 annotation(s)" in text


def test_board_status_counts_maps_of_the_submitted_board() -> None:
    def board(category: str, ids: list[str]) -> dict:
        return {
            "annotator": BOB,
            "category": category,
            "items": [{"id": i, "html": ""} for i in ids],
            "activations": [{"activation_id": i, "image_id": i, "x_feature": 0} for i in ids],
        }

    result = ranker({"_": ["j4"], "g1": ["j1", "j2"], "discard": ["j3"]})
    jay, cardinal = board("jay", ["j1", "j2", "j3", "j4"]), board("cardinal", ["c1", "c2"])
    tasks = [
        {"id": 1, "data": jay, "annotations": [_annotation(1, BOB_ID, result)]},
        {"id": 2, "data": cardinal, "annotations": []},
    ]
    row = project_status(_export(tasks, "board"), {})
    assert (row.tasks_done, row.named, row.discarded, row.unsorted, row.not_reached) == (
        1,
        2,
        1,
        1,
        2,
    )
    assert row.concepts == ["group 1"]
    assert "1/2 boards" in format_status([row])


class _StockLabelStudio(BaseHTTPRequestHandler):
    """Answers like a Label Studio without xnaming's settings: no /api/xnaming/."""

    def do_POST(self) -> None:  # the token refresh
        self._answer(200, {"access": "a.b.c"})

    def do_GET(self) -> None:
        self._answer(404, {"detail": "not found"})

    def _answer(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


def test_a_server_without_the_isolation_is_refused_with_the_fix() -> None:
    server = HTTPServer(("127.0.0.1", 0), _StockLabelStudio)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        manager = Manager(f"http://127.0.0.1:{server.server_port}", "x.y.z")
        with pytest.raises(IsolationMissing, match=r"DJANGO_SETTINGS_MODULE=ls_backend\.isolation"):
            manager.annotators()
    finally:
        server.shutdown()
