"""The ML backend's web shell, through Flask's test client (the real server is in test_live)."""

from __future__ import annotations

import base64

import pytest

from label_config import board_config, per_map_config
from ls_backend.backend.app import MODEL_VERSION, BackendSettings, create_app
from ls_backend.backend.naming import DESCRIPTORS
from tests.ls_backend.backend.fake_label_studio import PROJECT, SECRET, FakeLabelStudio
from tests.ls_backend.helpers import ranker, taxonomy


def board_task(task_id=1, annotator="ann@example.org", category="jay", spreads=None):
    """A board of 9 maps; with ``spreads``, map i has descriptors whose spread is spreads[i]."""
    acts = [
        {
            "activation_id": f"{category}{i}:x{i % 3}",
            "image_id": f"{category}{i}",
            "x_feature": i % 3,
            "heat_x": 0.2,
            "heat_y": 0.2,
        }
        for i in range(len(spreads) if spreads else 9)
    ]
    for act, spread in zip(acts, spreads or [], strict=False):
        act["descriptors"] = dict.fromkeys(DESCRIPTORS, 0.5) | {"heat_spread": spread}
    return {
        "id": task_id,
        "data": {
            "category": category,
            "annotator": annotator,
            "items": [{"id": a["activation_id"], "html": "<img>"} for a in acts],
            "activations": acts,
        },
    }


def per_map_task(task_id, activation_id, x=0, annotator="ann@example.org"):
    return {
        "id": task_id,
        "data": {
            "annotator": annotator,
            "activation_id": activation_id,
            "image_id": activation_id.split(":")[0],
            "category": "jay",
            "x_feature": x,
            "heat_x": 0.3,
            "heat_y": 0.3,
            "overlay": "/o",
            "image": "/i",
        },
    }


def created(annotation_id, task, result, project=3):
    return {
        "action": "ANNOTATION_CREATED",
        "annotation": {
            "id": annotation_id,
            "result": result,
            "project": project,
            "was_cancelled": False,
        },
        "task": task,
        "project": {"id": project},
    }


def authorization(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def ls():
    """The Label Studio the backends of a test read from."""
    return FakeLabelStudio()


@pytest.fixture
def make_client(tmp_path, ls):
    """Backends on one state (a second one is a restart), with the secret on every request."""
    apps = []

    def make(**settings):
        settings = {"basic_auth": SECRET, **settings}
        app = create_app(BackendSettings(state_dir=tmp_path / "state", **settings), label_studio=ls)
        apps.append(app)
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = authorization(*SECRET)
        return app, client

    yield make
    for app in apps:
        app.config["XNAMING_BACKEND"].wait_idle()


def predict(client, ls, *tasks, **body):
    """``/predict`` of ``tasks`` as Label Studio asks it (they are its tasks, in PROJECT)."""
    for task in tasks:
        if task["id"] not in ls.tasks:
            ls.add_task(task)
    project = ls.tasks[tasks[0]["id"]].project if tasks else PROJECT
    return client.post("/predict", json={"tasks": list(tasks), "project": f"{project}.17", **body})


def test_board_prediction_and_one_model_version(make_client, ls) -> None:
    _, client = make_client()
    answer = predict(client, ls, board_task(), label_config=board_config(groups=2))
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["model_version"] == MODEL_VERSION
    (prediction,) = body["results"][0]
    assert prediction["model_version"] == MODEL_VERSION
    ranker = prediction["result"][0]["value"]["ranker"]
    assert sorted(ranker) == ["_", "discard", "g1", "g2"]  # only the config's 2 groups
    assert len(ranker["_"]) == 3
    setup = client.post("/setup", json={"project": "3.1700000000", "schema": per_map_config()})
    assert setup.get_json() == {"model_version": MODEL_VERSION}
    assert client.get("/versions").get_json()["versions"] == [MODEL_VERSION]


def test_a_board_learns_what_the_annotator_left_unsorted_on_other_categories(
    make_client, ls
) -> None:
    app, client = make_client()
    spreads = [0.1 * (i % 10) for i in range(60)]
    earlier = board_task(1, category="finch", spreads=spreads)
    ids = [a["activation_id"] for a in earlier["data"]["activations"]]
    # On the finch board the annotator grouped the focused maps and left diffuse ones unsorted.
    kept = {"g1": [i for i, s in zip(ids, spreads, strict=True) if s < 0.5]}
    ls.annotate(7, earlier, ranker(kept))
    assert client.post("/webhook", json=created(7, earlier, ranker(kept))).status_code == 200
    assert app.config["XNAMING_BACKEND"].wait_idle()
    jay = board_task(2, category="jay", spreads=[0.05, 0.15, 0.85, 0.95])
    (prediction,) = predict(client, ls, jay).get_json()["results"][0]
    buckets = prediction["result"][0]["value"]["ranker"]
    assert sorted(buckets["_"]) == ["jay2:x2", "jay3:x0"]
    assert sorted(i for k, v in buckets.items() if k.startswith("g") for i in v) == [
        "jay0:x0",
        "jay1:x1",
    ]


def test_per_map_learns_from_webhook_and_survives_restart(make_client, ls) -> None:
    app, client = make_client()
    target = per_map_task(2, "b:x0")
    assert predict(client, ls, target).get_json()["results"] == [[]]
    ls.annotate(100, per_map_task(1, "a:x0"), taxonomy("eye"))
    hook = client.post("/webhook", json=created(100, per_map_task(1, "a:x0"), taxonomy("eye")))
    assert hook.status_code == 200
    assert hook.get_json()["status"] == "queued"
    assert app.config["XNAMING_BACKEND"].wait_idle()
    (prediction,) = predict(client, ls, target).get_json()["results"][0]
    assert prediction["result"][0]["value"]["taxonomy"] == [["eye"]]
    assert prediction["score"] == 1.0
    # Replaying the same event changes nothing; another annotator learns nothing from it.
    client.post("/webhook", json=created(100, per_map_task(1, "a:x0"), taxonomy("eye")))
    other = ls.add_task(per_map_task(4, "b:x0", annotator="other@example.org"), project=5)
    assert predict(client, ls, other).get_json()["results"] == [[]]
    # A new app on the same state (a restart), without /setup: the namings are still there.
    app.config["XNAMING_BACKEND"].wait_idle()
    _, restarted = make_client()
    again = predict(restarted, ls, target).get_json()["results"][0]
    assert again[0]["result"][0]["value"]["taxonomy"] == [["eye"]]


def test_deleted_annotation_is_forgotten(make_client, ls) -> None:
    app, client = make_client()
    ls.annotate(5, per_map_task(1, "a:x0"), taxonomy("eye"))
    client.post("/webhook", json=created(5, per_map_task(1, "a:x0"), taxonomy("eye")))
    assert app.config["XNAMING_BACKEND"].wait_idle()
    ls.delete(5)
    client.post(
        "/webhook",
        json={"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 5}], "project": {"id": 3}},
    )
    assert app.config["XNAMING_BACKEND"].wait_idle()
    assert predict(client, ls, per_map_task(2, "b:x0")).get_json()["results"] == [[]]


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/predict", b"not json", "not JSON"),
        ("/predict", b"[]", "request body must be dict"),
        ("/predict", b"{}", "'tasks' must be list"),
        ("/predict", b'{"tasks": [{"id": 1, "data": {"category": "c"}}]}', "tasks[0] (id 1)"),
        ("/predict", b'{"tasks": [{"id": 1}]}', "tasks[0].data must be dict"),
        ("/predict", b'{"tasks": [], "label_config": "<View>"}', "'label_config': the labeling"),
        ("/webhook", b'{"action": "ANNOTATION_CREATED"}', "'annotation' must be dict"),
        (
            "/webhook",
            b'{"action": "ANNOTATION_CREATED", "annotation": {"id": "x"}}',
            "'annotation.id'",
        ),
        ("/webhook", b'{"annotation": {}}', "'action' must be str"),
        ("/webhook", b'{"action": "ANNOTATIONS_DELETED", "annotations": 3}', "'annotations'"),
        ("/setup", b'{"schema": ""}', "'project' is missing"),
    ],
)
def test_malformed_bodies_get_400_with_a_message(make_client, path, body, message) -> None:
    _, client = make_client()
    answer = client.post(path, data=body, content_type="application/json")
    assert answer.status_code == 400
    assert message in answer.get_json()["error"]
    assert "Traceback" not in answer.get_data(as_text=True)


def test_unknown_webhook_actions_are_acknowledged(make_client) -> None:
    _, client = make_client()
    answer = client.post("/webhook", json={"action": "TASKS_CREATED", "tasks": []})
    assert answer.status_code == 200
    assert answer.get_json()["status"] == "ignored"


def test_basic_auth(make_client) -> None:
    _, client = make_client(basic_auth=("ls", "s3cret"))
    client.environ_base.pop("HTTP_AUTHORIZATION")
    assert client.get("/versions").status_code == 401
    bad = authorization("ls", "wrong")
    assert client.get("/versions", headers={"Authorization": bad}).status_code == 401
    good = authorization("ls", "s3cret")
    assert client.get("/versions", headers={"Authorization": good}).status_code == 200
