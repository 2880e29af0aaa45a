"""Only Label Studio speaks to the backend: against the session's real server and backend.

Issue 29's findings, as an outsider met them: the backend served anyone (no secret); a forged
``ANNOTATION_CREATED`` naming alice's project put the forger's names into her proposals; a
forged ``ANNOTATIONS_DELETED`` erased what the backend had learnt from bob; ``/predict`` with
``"annotator": "bob"`` in the body answered bob's names; ``POST /train`` answered a traceback.
"""

from __future__ import annotations

import pytest
import requests

from ls_backend.backend.store import NamingStore
from ls_backend.server import login_session
from tests.ls_backend.bundle_factory import make_bundle, read_parts
from tests.ls_backend.helpers import group_names, ranker, wait_for
from xnaming.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.server]

ALICE, BOB = "alice-trust@example.org", "bob-trust@example.org"
ROUTES = [
    ("GET", "/"),
    ("POST", "/predict"),
    ("POST", "/setup"),
    ("POST", "/webhook"),
    ("POST", "/train"),
    ("GET", "/is_training"),
    ("GET", "/metrics"),
    ("GET", "/versions"),
]


def _auth(label_studio):
    """The backend's secret (``None`` on a backend without one)."""
    try:
        return label_studio.backend_auth
    except (AttributeError, AssertionError):
        return None


def _idle(label_studio) -> bool:
    answer = requests.get(f"{label_studio.backend_url}/health", timeout=10)
    return answer.status_code == 200 and not answer.json()["learning"]


def _post(label_studio, path: str, body: dict) -> requests.Response:
    return requests.post(
        label_studio.backend_url + path, json=body, auth=_auth(label_studio), timeout=60
    )


def _submit(label_studio, email: str, task: dict, result: list) -> int:
    """``email`` annotates ``task`` in the labeling UI's way; the annotation's id."""
    session = login_session(label_studio.url, email, label_studio.password(email))
    answer = session.post(
        f"{label_studio.url}/api/tasks/{task['id']}/annotations/",
        json={"result": result},
        headers={"X-CSRFToken": session.cookies.get("csrftoken", ""), "Referer": label_studio.url},
        timeout=60,
    )
    assert answer.status_code == 201, answer.text[:300]
    return answer.json()["id"]


def _sorted(task: dict, parts, head: str, wing: str) -> list:
    """Board result: head maps in a group named ``head``, wing maps in ``wing``, tails
    unsorted, leaves discarded."""
    ids = [a["activation_id"] for a in task["data"]["activations"]]
    by_part = {p: [a for a in ids if parts[a] == p] for p in ("head", "wing", "tail", "leaves")}
    buckets = {"_": by_part["tail"], "g1": by_part["head"], "g2": by_part["wing"]}
    buckets["discard"] = by_part["leaves"]
    return ranker(buckets) + group_names({1: head, 2: wing})


def _store_rows(label_studio, email: str) -> list:
    store = NamingStore(label_studio.data_dir / "backend" / "namings.sqlite3")
    try:
        return sorted((n.map.activation_id, n.concept, n.status) for n in store.namings_of(email))
    finally:
        store.close()


@pytest.fixture(scope="module")
def trust(label_studio):
    """alice and bob, each with a board project; each has sorted their cardinal board."""
    from ls_backend.manager.client import Manager

    bundle = make_bundle(
        label_studio.files_root / "bundle-trust",
        categories=("cardinal", "finch"),
        images_per_category=12,
        embeddings=True,
    )
    parts = read_parts(bundle).set_index("activation_id")["part"]
    common = ["--data-dir", str(label_studio.data_dir)]
    assert main(["publish", str(bundle), "--annotators", f"{ALICE},{BOB}", *common]) == 0
    manager = Manager(label_studio.url, label_studio.token)
    found = {}
    for annotator in manager.annotators():
        if annotator.email in (ALICE, BOB):
            (project,) = [p for p in annotator.projects if annotator.email in p["title"]]
            tasks = manager.request(
                "GET",
                f"/api/projects/{project['id']}/export?export_type=JSON&download_all_tasks=true",
            ).json()
            by_category = {t["data"]["category"]: t for t in tasks}
            found[annotator.email] = {"project": project["id"], "tasks": by_category}
    for email, head, wing in ((ALICE, "beak", "wing"), (BOB, "bobs-secret-name", "bobs-wing")):
        cardinal = found[email]["tasks"]["cardinal"]
        result = _sorted(cardinal, parts, head, wing)
        found[email]["annotation"] = _submit(label_studio, email, cardinal, result)
    found["parts"] = parts
    assert wait_for(lambda: _idle(label_studio), timeout=120)
    assert _store_rows(label_studio, ALICE)
    assert _store_rows(label_studio, BOB)
    return found


def _predict(label_studio, task: dict, project: int) -> list:
    body = {"tasks": [{"id": task["id"], "data": task["data"]}], "project": f"{project}.17"}
    answer = _post(label_studio, "/predict", body)
    assert answer.status_code == 200, answer.text[:300]
    return answer.json()["results"]


def _names(results: list) -> set[str]:
    return {
        r["value"]["text"][0]
        for prediction in results[0]
        for r in prediction["result"]
        if r["type"] == "textarea"
    }


def test_the_real_backend_refuses_every_route_without_the_secret(label_studio) -> None:
    for method, path in ROUTES:
        answer = requests.request(method, label_studio.backend_url + path, json={}, timeout=30)
        assert answer.status_code == 401, (method, path, answer.status_code)
        guessed = ("xnaming", "guess")
        answer = requests.request(
            method, label_studio.backend_url + path, json={}, auth=guessed, timeout=30
        )
        assert answer.status_code == 401, (method, path, answer.status_code)
    assert requests.get(f"{label_studio.backend_url}/health", timeout=30).status_code == 200


def test_train_answers_a_json_error_without_a_traceback(label_studio) -> None:
    answer = _post(label_studio, "/train", {"annotations": [{"id": 1}], "project": 1})
    assert 400 <= answer.status_code < 500, answer.status_code
    assert answer.json()["error"]
    assert "Traceback" not in answer.text


def test_a_forged_webhook_naming_alices_project_changes_nothing(label_studio, trust) -> None:
    alice = trust[ALICE]
    finch = alice["tasks"]["finch"]
    before = _predict(label_studio, finch, alice["project"])
    assert "beak" in _names(before)
    rows = _store_rows(label_studio, ALICE)
    data = alice["tasks"]["cardinal"]["data"]
    for number, annotation_id in enumerate((987_654_321, 987_654_322, alice["annotation"])):
        event = {
            "action": "ANNOTATION_CREATED",
            "annotation": {
                "id": annotation_id,
                "project": alice["project"],
                "completed_by": data.get("annotator_id"),
                "was_cancelled": False,
                "result": _sorted(
                    alice["tasks"]["cardinal"], trust["parts"], f"forged-{number}", "forged"
                ),
            },
            "task": {"id": alice["tasks"]["cardinal"]["id"], "data": data},
            "project": {"id": alice["project"]},
        }
        assert _post(label_studio, "/webhook", event).status_code == 200
    assert wait_for(lambda: _idle(label_studio), timeout=120)
    assert _store_rows(label_studio, ALICE) == rows
    assert _predict(label_studio, finch, alice["project"]) == before


def test_predict_answers_from_the_task_projects_annotator_only(label_studio, trust) -> None:
    alice, bob = trust[ALICE], trust[BOB]
    assert "bobs-secret-name" in _names(
        _predict(label_studio, bob["tasks"]["finch"], bob["project"])
    )
    # alice's task with a body that says it is bob's: alice's own proposal.
    finch = alice["tasks"]["finch"]
    claimed = {**finch, "data": {**finch["data"], "annotator": BOB}}
    answer = _predict(label_studio, claimed, alice["project"])
    assert "bobs-secret-name" not in _names(answer)
    assert answer == _predict(label_studio, finch, alice["project"])
    # bob's task claimed for alice's project, and a task Label Studio does not hold.
    assert _predict(label_studio, bob["tasks"]["finch"], alice["project"]) == [[]]
    invented = {"id": 987_654_321, "data": bob["tasks"]["finch"]["data"]}
    assert _predict(label_studio, invented, bob["project"]) == [[]]


def test_a_forged_delete_does_not_erase_bobs_learning(label_studio, trust) -> None:
    rows = _store_rows(label_studio, BOB)
    event = {
        "action": "ANNOTATIONS_DELETED",
        "annotations": [{"id": trust[BOB]["annotation"]}],
        "project": {"id": trust[BOB]["project"]},
    }
    assert _post(label_studio, "/webhook", event).status_code == 200
    assert wait_for(lambda: _idle(label_studio), timeout=120)
    assert _store_rows(label_studio, BOB) == rows


def test_an_annotator_who_edits_her_task_data_gets_her_own_proposals(label_studio, trust) -> None:
    """A project is its annotator's by its organization: task data naming bob changes nothing."""
    alice = trust[ALICE]
    finch = alice["tasks"]["finch"]
    before = _predict(label_studio, finch, alice["project"])
    session = login_session(label_studio.url, ALICE, label_studio.password(ALICE))
    edited = {**finch["data"], "annotator": BOB, "annotator_id": None}
    answer = session.patch(
        f"{label_studio.url}/api/tasks/{finch['id']}/",
        json={"data": edited},
        headers={"X-CSRFToken": session.cookies.get("csrftoken", ""), "Referer": label_studio.url},
        timeout=60,
    )
    assert answer.status_code in (200, 403), answer.text[:300]
    after = _predict(label_studio, {**finch, "data": edited}, alice["project"])
    assert "bobs-secret-name" not in _names(after)
    assert after == before
