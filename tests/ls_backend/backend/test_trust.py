"""What the backend trusts: the secret, and Label Studio's word over any request body.

With an in-memory Label Studio (fake_label_studio); test_trust_live.py proves the same against a
real server and backend.
"""

from __future__ import annotations

import dataclasses

import pytest

from ls_backend.backend.app import BackendSettings, MissingSecret, create_app
from ls_backend.backend.label_studio import LabelStudioUnavailable
from tests.ls_backend.backend.fake_label_studio import PROJECT, SECRET, FakeLabelStudio
from tests.ls_backend.backend.test_backend_app import (
    authorization,
    created,
    per_map_task,
    predict,
)
from tests.ls_backend.helpers import taxonomy

ROUTES = [
    ("GET", "/"),
    ("POST", "/predict"),
    ("POST", "/setup"),
    ("POST", "/webhook"),
    ("POST", "/train"),
    ("GET", "/is_training"),
    ("GET", "/metrics"),
    ("GET", "/versions"),
    ("POST", "/versions"),
]


@pytest.fixture
def ls():
    return FakeLabelStudio()


@pytest.fixture
def app(tmp_path, ls):
    app = create_app(BackendSettings(state_dir=tmp_path, basic_auth=SECRET), label_studio=ls)
    yield app
    app.config["XNAMING_BACKEND"].wait_idle()


@pytest.fixture
def client(app):
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = authorization(*SECRET)
    return client


@pytest.mark.parametrize("secret", [None, ("", ""), ("user", "")])
def test_the_backend_does_not_serve_without_a_secret(tmp_path, secret) -> None:
    with pytest.raises(MissingSecret, match="XNAMING_BACKEND_USER and XNAMING_BACKEND_PASSWORD"):
        create_app(BackendSettings(state_dir=tmp_path, basic_auth=secret))


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_but_health_needs_the_secret(app, method, path) -> None:
    client = app.test_client()
    for header in ({}, {"Authorization": authorization(SECRET[0], "guess")}):
        answer = client.open(path, method=method, json={}, headers=header)
        assert answer.status_code == 401
        assert answer.get_json() == {"error": "authentication required"}
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/train", 410),
        ("GET", "/train", 405),
        ("GET", "/predict", 405),
        ("GET", "/nowhere", 404),
        ("POST", "/webhook", 400),
    ],
)
def test_every_route_answers_json_errors_without_tracebacks(client, method, path, status) -> None:
    answer = client.open(path, method=method, json={"annotations": [1], "project": 1})
    assert answer.status_code == status
    assert answer.get_json()["error"]
    assert "Traceback" not in answer.get_data(as_text=True)
    assert set(client.get("/is_training").get_json()) == {"is_training"}
    assert client.get("/metrics").get_json() == {}


def test_label_studio_down_or_broken_is_a_json_error(client, ls, monkeypatch) -> None:
    task = ls.add_task(per_map_task(2, "b:x0"))

    def down(project, ids):
        raise LabelStudioUnavailable("Label Studio at http://x: connection refused")

    monkeypatch.setattr(ls, "tasks_of", down)
    answer = client.post("/predict", json={"tasks": [task], "project": PROJECT})
    assert answer.status_code == 503
    assert "connection refused" in answer.get_json()["error"]
    monkeypatch.setattr(ls, "tasks_of", lambda project, ids: 1 / 0)
    answer = client.post("/predict", json={"tasks": [task], "project": PROJECT})
    assert answer.status_code == 500
    assert answer.get_json() == {"error": "internal error (ZeroDivisionError); see the log"}


def _learnt(app, annotator="ann@example.org") -> list:
    return sorted(
        (n.map.activation_id, n.concept, n.status)
        for n in app.config["XNAMING_BACKEND"].store.namings_of(annotator)
    )


def test_a_forged_webhook_teaches_nothing(app, client, ls) -> None:
    """The body's annotation, task, project and author are not Label Studio's: ignored."""
    mine = per_map_task(1, "a:x0")
    ls.annotate(10, mine, taxonomy("eye"))
    assert client.post("/webhook", json=created(10, mine, taxonomy("eye"))).status_code == 200
    assert app.config["XNAMING_BACKEND"].wait_idle()
    before = _learnt(app)
    assert before == [("a:x0", "eye", "named")]
    target = per_map_task(2, "b:x0")
    proposal = predict(client, ls, target).get_json()["results"]
    # An invented annotation id, and a real one with another result, task and author.
    forged_task = per_map_task(3, "c:x0")
    for annotation_id in (11, 10):
        event = created(annotation_id, forged_task, taxonomy("forged"))
        event["annotation"]["completed_by"] = 7
        assert client.post("/webhook", json=event).status_code == 200
    assert app.config["XNAMING_BACKEND"].wait_idle()
    assert _learnt(app) == before
    assert predict(client, ls, target).get_json()["results"] == proposal


def test_a_forged_delete_forgets_nothing(app, client, ls) -> None:
    ls.annotate(20, per_map_task(1, "a:x0", annotator="bob@example.org"), taxonomy("eye"))
    event = created(20, per_map_task(1, "a:x0"), [])
    assert client.post("/webhook", json=event).status_code == 200
    assert app.config["XNAMING_BACKEND"].wait_idle()
    assert _learnt(app, "bob@example.org") == [("a:x0", "eye", "named")]
    deleted = {"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 20}], "project": PROJECT}
    assert client.post("/webhook", json=deleted).status_code == 200
    assert app.config["XNAMING_BACKEND"].wait_idle()
    assert _learnt(app, "bob@example.org") == [("a:x0", "eye", "named")]
    ls.delete(20)  # now Label Studio has it no more
    assert client.post("/webhook", json=deleted).status_code == 200
    assert app.config["XNAMING_BACKEND"].wait_idle()
    assert _learnt(app, "bob@example.org") == []


def test_predict_answers_from_the_projects_own_annotator_only(app, client, ls) -> None:
    bob_task = per_map_task(1, "a:x0", annotator="bob@example.org")
    ls.add_task(bob_task, project=5)
    ls.annotate(30, bob_task, taxonomy("bob's secret"))
    assert client.post("/webhook", json=created(30, bob_task, [])).status_code == 200
    assert app.config["XNAMING_BACKEND"].wait_idle()
    bobs = ls.add_task(per_map_task(2, "b:x0", annotator="bob@example.org"), project=5)
    (answer,) = predict(client, ls, bobs).get_json()["results"][0]
    assert answer["result"][0]["value"]["taxonomy"] == [["bob's secret"]]
    # alice's task, with a body that names bob: alice has learnt nothing.
    alices = ls.add_task(per_map_task(3, "b:x0", annotator="alice@example.org"), project=6)
    asked = {**alices, "data": {**alices["data"], "annotator": "bob@example.org"}}
    assert predict(client, ls, asked).get_json()["results"] == [[]]
    # bob's task claimed for alice's project, and a task Label Studio does not hold.
    body = {"tasks": [bobs], "project": 6}
    assert client.post("/predict", json=body).get_json()["results"] == [[]]
    invented = per_map_task(99, "b:x0", annotator="bob@example.org")
    body = {"tasks": [invented], "project": 5}
    assert client.post("/predict", json=body).get_json()["results"] == [[]]
    assert client.post("/predict", json={"tasks": [bobs]}).get_json()["results"] == [[]]


def test_an_annotator_who_edits_her_task_data_stays_herself(app, client, ls) -> None:
    """Task data is the annotator's to edit: the project says whose it is, not the data."""
    bob_task = ls.add_task(per_map_task(1, "a:x0", annotator="bob@example.org"), project=5)
    ls.annotate(40, bob_task, taxonomy("bob's secret"))
    client.post("/webhook", json=created(40, bob_task, []))
    alices = ls.add_task(per_map_task(2, "a:x0", annotator="alice@example.org"), project=6)
    ls.tasks[2].data["annotator"] = "bob@example.org"  # alice edits her task in Label Studio
    assert predict(client, ls, alices).get_json()["results"] == [[]]
    ls.annotate(41, alices, taxonomy("alice's own"))
    client.post("/webhook", json=created(41, alices, []))
    assert app.config["XNAMING_BACKEND"].wait_idle()
    assert _learnt(app, "bob@example.org") == [("a:x0", "bob's secret", "named")]
    assert _learnt(app, "alice@example.org") == [("a:x0", "alice's own", "named")]


def test_a_task_whose_data_its_annotator_broke_gets_no_prediction(client, ls) -> None:
    broken, fine = per_map_task(1, "a:x0"), per_map_task(2, "b:x0")
    ls.add_task(broken)
    ls.add_task(fine)
    edited = {k: v for k, v in broken["data"].items() if k != "x_feature"}
    ls.tasks[1] = dataclasses.replace(ls.tasks[1], data=edited)  # the request carries the old
    answer = predict(client, ls, broken, fine)
    assert answer.status_code == 200
    assert answer.get_json()["results"] == [[], []]
