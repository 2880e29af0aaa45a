"""The proposal that learns each annotator, against a real Label Studio (see conftest).

An annotator sorts board 1 of a bundle with map embeddings, naming the group of its head maps
"beak"; when they open board 2 (as the labeling UI does: ``GET /api/tasks/ID/`` with their own
session), the prediction Label Studio shows has a group named "beak" holding board 2's head maps.
Replayed webhooks and someone else's annotation teach the backend nothing; a backend restart
keeps what it learned.
"""

from __future__ import annotations

import pytest
import requests

from ls_backend.backend.app import MODEL_VERSION
from ls_backend.backend.store import NamingStore
from ls_backend.server import login_session
from tests.ls_backend.bundle_factory import make_bundle, read_parts
from tests.ls_backend.helpers import group_names, wait_for
from tests.ls_backend.helpers import ranker as board_result
from xnaming.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.server]

ANNOTATOR = "beak@example.org"
CATEGORIES = ("cardinal", "finch", "jay")  # the order of the boards


@pytest.fixture(scope="module")
def beak(label_studio):
    """A bundle with embeddings published to ANNOTATOR, their session and their boards."""
    bundle = make_bundle(
        label_studio.files_root / "bundle-embeddings",
        categories=CATEGORIES,
        images_per_category=20,
        embeddings=True,
    )
    common = ["--data-dir", str(label_studio.data_dir)]
    assert main(["publish", str(bundle), "--annotators", ANNOTATOR, *common]) == 0
    (project,) = [p for p in label_studio.projects() if p.title == f"xnaming board: {ANNOTATOR}"]
    session = login_session(label_studio.url, ANNOTATOR, label_studio.password(ANNOTATOR))
    listed = session.get(
        f"{label_studio.url}/api/tasks/", params={"project": project.id}, timeout=60
    ).json()["tasks"]
    parts = read_parts(bundle).set_index("activation_id")["part"]
    return {
        "project": project,
        "session": session,
        "tasks": {t["data"]["category"]: t["id"] for t in listed},
        "parts": parts,
    }


def _open(label_studio, session, task_id: int) -> dict:
    answer = session.get(f"{label_studio.url}/api/tasks/{task_id}/", timeout=60)
    assert answer.status_code == 200, answer.text[:300]
    return answer.json()


def _proposal(task: dict) -> tuple[dict, dict]:
    """The newest prediction's buckets and group name per bucket."""
    ours = [p for p in task["predictions"] if p["model_version"] == MODEL_VERSION]
    assert ours, f"task {task['id']} has no prediction of {MODEL_VERSION}: {task['predictions']}"
    result = max(ours, key=lambda p: p["id"])["result"]
    (buckets,) = [r["value"]["ranker"] for r in result if r["type"] == "ranker"]
    names = {
        r["from_name"].removesuffix("_name"): r["value"]["text"][0]
        for r in result
        if r["type"] == "textarea"
    }
    return buckets, names


def _idle(label_studio) -> bool:
    return not requests.get(
        f"{label_studio.backend_url}/health", auth=label_studio.backend_auth, timeout=10
    ).json()["learning"]


def _sorted_by_part(task: dict, parts) -> list[dict]:
    """Board result: head maps in "beak", wing maps in "wing", tails unsorted, leaves discarded."""
    ids = [a["activation_id"] for a in task["data"]["activations"]]
    by_part = {p: [a for a in ids if parts[a] == p] for p in ("head", "wing", "tail", "leaves")}
    ranker = {"_": by_part["tail"], "g1": by_part["head"], "g2": by_part["wing"]}
    ranker["discard"] = by_part["leaves"]
    return board_result(ranker) + group_names({1: "beak", 2: "wing"})


def _beak_group(task: dict, parts) -> tuple[set, set]:
    """(maps of the proposed "beak" group, board's head maps)."""
    buckets, names = _proposal(task)
    beak = [bucket for bucket, name in names.items() if name == "beak"]
    assert len(beak) == 1, f"no group named beak in {names}"
    heads = {a["activation_id"] for a in task["data"]["activations"]}
    return set(buckets[beak[0]]), {a for a in heads if parts[a] == "head"}


def test_beak_of_board_one_is_proposed_on_board_two(label_studio, beak) -> None:
    session, tasks, parts = beak["session"], beak["tasks"], beak["parts"]
    first = _open(label_studio, session, tasks["cardinal"])
    # Nothing learnt yet: groups from the X-features, no names.
    buckets, names = _proposal(first)
    assert names == {}
    answer = session.post(
        f"{label_studio.url}/api/tasks/{tasks['cardinal']}/annotations/",
        json={"result": _sorted_by_part(first, parts)},
        headers={"X-CSRFToken": session.cookies.get("csrftoken", ""), "Referer": label_studio.url},
        timeout=60,
    )
    assert answer.status_code == 201, answer.text[:300]
    assert wait_for(lambda: _idle(label_studio))
    second = _open(label_studio, session, tasks["finch"])
    proposed, heads = _beak_group(second, parts)
    assert heads
    assert proposed == heads
    buckets, _ = _proposal(second)
    leaves = {a for a in parts.index if a.startswith("finch") and parts[a] == "leaves"}
    assert set(buckets["discard"]) == leaves  # discarded as on board 1
    assert {a for a in buckets["_"]} == {
        a for a in parts.index if a.startswith("finch") and parts[a] == "tail"
    }


def _store_rows(label_studio) -> list:
    store = NamingStore(label_studio.data_dir / "backend" / "namings.sqlite3")
    try:
        return sorted(
            (n.map.activation_id, n.concept, n.status) for n in store.namings_of(ANNOTATOR)
        )
    finally:
        store.close()


def test_webhook_replays_and_other_people_teach_nothing(label_studio, beak) -> None:
    from ls_backend.manager.client import Manager

    before = _store_rows(label_studio)
    assert before, "run after the first test: the annotator has sorted board 1"
    manager = Manager(label_studio.url, label_studio.token)
    own = {a.email: a.organization for a in manager.annotators()}[ANNOTATOR]
    path = f"/api/tasks/{beak['tasks']['cardinal']}/"
    task = manager.request("GET", path, organization=own).json()
    (annotation,) = task["annotations"]
    event = {
        "action": "ANNOTATION_CREATED",
        "annotation": annotation,
        "task": {"id": task["id"], "data": task["data"]},
        "project": {"id": beak["project"].id},
    }
    for action in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATION_CREATED"):
        answer = requests.post(
            f"{label_studio.backend_url}/webhook",
            json={**event, "action": action},
            auth=label_studio.backend_auth,
            timeout=10,
        )
        assert answer.status_code == 200
    assert wait_for(lambda: _idle(label_studio))
    assert _store_rows(label_studio) == before
    # The manager sorts board 3 otherwise (everything discarded): not the annotator's doing.
    jay = manager.request("GET", f"/api/tasks/{beak['tasks']['jay']}/", organization=own).json()
    ids = [a["activation_id"] for a in jay["data"]["activations"]]
    theirs = manager.client(own).annotations.create(
        id=jay["id"],
        result=[
            {
                "type": "ranker",
                "from_name": "groups",
                "to_name": "maps",
                "value": {"ranker": {"_": [], "discard": ids}},
            }
        ],
    )
    assert wait_for(lambda: _idle(label_studio))
    assert _store_rows(label_studio) == before
    manager.client(own).annotations.delete(theirs.id)


def test_backend_restart_keeps_what_it_learned(label_studio, beak) -> None:
    parts = beak["parts"]
    manager_view = requests.Session()
    manager_view.auth = label_studio.backend_auth
    data = _open(label_studio, beak["session"], beak["tasks"]["finch"])["data"]
    body = {"tasks": [{"id": beak["tasks"]["finch"], "data": data}], "project": beak["project"].id}
    before = manager_view.post(f"{label_studio.backend_url}/predict", json=body, timeout=60).json()
    label_studio.server.restart_backend()
    assert wait_for(lambda: _idle(label_studio), timeout=120)
    after = manager_view.post(f"{label_studio.backend_url}/predict", json=body, timeout=60).json()
    assert after == before
    # And the annotator's next board still gets their "beak".
    proposed, heads = _beak_group(_open(label_studio, beak["session"], beak["tasks"]["jay"]), parts)
    assert heads
    assert proposed == heads
