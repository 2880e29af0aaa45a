"""`xnaming status` against a real Label Studio: its figures equal counts taken from the export.

The expected figures are computed here from the raw JSON export with the rules of
docs/formats.md written out anew, not with the reader status uses.
"""

from __future__ import annotations

import re

import pytest

from ls_backend.manager.client import Manager
from ls_backend.manager.publish import project_title
from ls_backend.manager.status import format_status, status, watch
from tests.ls_backend.helpers import ranker, taxonomy
from tests.ls_backend.isolation_helpers import export, sign_in
from xnaming.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.server]

DAVE, ERIN = "stat-dave@example.org", "stat-erin@example.org"


def _expected(tasks: list[dict], annotator_id: int) -> dict:
    """The status figures of one project, counted from its export."""
    done = named = unsorted = discarded = not_reached = foreign = 0
    concepts, times = set(), []
    for task in tasks:
        data = task["data"]
        maps = (
            [data["activation_id"]]
            if "activation_id" in data
            else [a["activation_id"] for a in data["activations"]]
        )
        own = [a for a in task["annotations"] if a["completed_by"] == annotator_id]
        foreign += len(task["annotations"]) - len(own)
        times += [a["updated_at"] for a in own]
        own = [a for a in own if not a["was_cancelled"]]
        if not own:
            not_reached += len(maps)
            continue
        done += 1
        result = max(own, key=lambda a: (a["updated_at"], a["id"]))["result"]
        if "activation_id" in data:
            kinds = {r["type"]: r["value"] for r in result}
            if "discard" in kinds.get("choices", {}).get("choices", []):
                discarded += 1
            elif kinds.get("taxonomy", {}).get("taxonomy"):
                named += 1
                concepts.add(kinds["taxonomy"]["taxonomy"][0][-1])
            else:
                unsorted += 1
            continue
        buckets = next(r["value"]["ranker"] for r in result if r["type"] == "ranker")
        names = {r["from_name"]: r["value"]["text"][-1] for r in result if r["type"] == "textarea"}
        placed = set()
        for bucket, members in buckets.items():
            placed |= set(members)
            if bucket == "discard":
                discarded += len(members)
            elif bucket != "_" and members:
                named += len(members)
                concepts.add(names.get(f"{bucket}_name") or f"group {bucket[1:]}")
        unsorted += len(set(maps) - placed) + len(buckets.get("_", []))
    return {
        "tasks_done": done,
        "tasks_total": len(tasks),
        "named": named,
        "unsorted": unsorted,
        "discarded": discarded,
        "not_reached": not_reached,
        "concepts": sorted(concepts),
        "last_activity": max(times, default=""),
        "foreign": foreign,
    }


@pytest.fixture(scope="module")
def worked(label_studio) -> dict:
    """dave names, discards, skips and leaves maps unsorted in both modes; erin does nothing."""
    common = ["--no-backend", "--data-dir", str(label_studio.data_dir)]
    bundle = str(label_studio.bundle)
    assert main(["publish", bundle, "--annotators", f"{DAVE},{ERIN}", *common]) == 0
    assert main(["publish", bundle, "--annotators", DAVE, "--mode", "per-map", *common]) == 0
    manager = Manager(label_studio.url, label_studio.token)
    (dave,) = [a for a in manager.annotators() if a.email == DAVE]
    projects = {p["title"]: p["id"] for p in dave.projects}
    client = manager.client(dave.organization)
    board = {
        t.data["category"]: t
        for t in client.tasks.list(project=projects[project_title(DAVE, "board")])
    }
    per_map = list(client.tasks.list(project=projects[project_title(DAVE, "per-map")]))
    session, _ = sign_in(label_studio.url, DAVE, label_studio.password(DAVE))
    headers = {"X-CSRFToken": session.cookies["csrftoken"], "Referer": label_studio.url}

    def annotate(task_id: int, result: list, **extra) -> None:
        answer = session.post(
            f"{label_studio.url}/api/tasks/{task_id}/annotations/",
            headers=headers,
            json={"result": result, **extra},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text

    ids = sorted(a["activation_id"] for a in board["cardinal"].data["activations"])
    name = {"type": "textarea", "from_name": "g1_name", "to_name": "maps"}
    annotate(
        board["cardinal"].id,
        [
            *ranker({"_": ids[5:], "g1": ids[:3], "g2": ids[3:4], "discard": ids[4:5]}),
            {**name, "value": {"text": ["head"]}},
        ],
    )
    annotate(board["jay"].id, [], was_cancelled=True)  # skipped: not done
    discard = {"type": "choices", "from_name": "discard", "to_name": "overlay"}
    annotate(per_map[0].id, taxonomy("eye"))
    annotate(per_map[1].id, taxonomy("eye"))
    annotate(per_map[2].id, [{**discard, "value": {"choices": ["discard"]}}])
    annotate(per_map[3].id, [])  # submitted empty: seen, left unsorted
    # Someone else's annotation (the manager's) is counted apart, never as dave's.
    label_studio.client().annotations.create(id=per_map[4].id, result=taxonomy("wing"))
    return {"manager": manager, "dave": dave, "projects": projects}


def test_status_figures_equal_counts_from_the_export(label_studio, worked) -> None:
    rows = {
        (r.annotator, r.mode): r
        for r in status(label_studio.url, label_studio.token, projects=label_studio.recorded())
    }
    dave = worked["dave"]
    for mode in ("board", "per-map"):
        row = rows[(DAVE, mode)]
        tasks = export(worked["manager"], worked["projects"][project_title(DAVE, mode)])
        expected = _expected(tasks, dave.id)
        got = {key: getattr(row, key) for key in expected}
        assert got == expected, mode
    # What dave did, in plain numbers (so the comparison above is not empty on both sides).
    board, per_map = rows[(DAVE, "board")], rows[(DAVE, "per-map")]
    assert (board.tasks_done, board.named, board.discarded) == (1, 4, 1)
    assert board.concepts == ["group 2", "head"]
    assert (per_map.tasks_done, per_map.named, per_map.discarded, per_map.unsorted) == (4, 2, 1, 1)
    assert (per_map.concepts, per_map.foreign) == (["eye"], 1)
    erin = rows[(ERIN, "board")]
    assert (erin.tasks_done, erin.named, erin.unsorted, erin.last_activity) == (0, 0, 0, "")
    assert erin.not_reached == board.named + board.discarded + board.unsorted + board.not_reached


def test_status_command_prints_one_line_per_project(label_studio, worked, capsys) -> None:
    capsys.readouterr()
    assert main(["status", "--data-dir", str(label_studio.data_dir)]) == 0
    out = capsys.readouterr().out
    board = next(
        line for line in out.splitlines() if line.startswith(f"{DAVE}  ") and " board " in line
    )
    assert re.search(r"\b1/2 boards\s+4\s+\d+\s+1\s+\d+\s+2 \(group 2, head\)", board), board
    assert "holds 1 annotation(s) by someone else" in out
    shown = []
    watch(
        label_studio.url,
        label_studio.token,
        projects=label_studio.recorded(),
        every=0.01,
        rounds=2,
        show=shown.append,
    )
    assert len(shown) == 2
    assert all(DAVE in screen for screen in shown)


def test_status_of_nothing_says_what_to_do() -> None:
    assert "xnaming publish" in format_status([])
