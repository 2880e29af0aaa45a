"""The backend's bounds: body size, maps per board and per request, finite numbers only.

The unit part goes through Flask's test client; the live part posts to the real backend
process of the session's Label Studio (tests/ls_backend/conftest.py).
"""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
import requests

from ls_backend.backend.app import BackendSettings, create_app
from ls_backend.backend.naming import DESCRIPTORS
from ls_backend.backend.validation import MAX_BOARD_MAPS, MAX_REQUEST_BYTES, MAX_REQUEST_MAPS
from tests.ls_backend.backend.fake_label_studio import PROJECT, SECRET, FakeLabelStudio
from tests.ls_backend.backend.test_backend_app import authorization
from tests.ls_backend.helpers import ranker


def board(maps: int, task_id: int = 7, category: str = "jay") -> dict:
    """A board task of ``maps`` maps, as publish writes it (docs/formats.md)."""
    acts = [
        {
            "activation_id": f"{category}{i}:x{i % 4}",
            "image_id": f"{category}{i}",
            "x_feature": i % 4,
            "heat_x": 0.1 + 0.2 * (i % 4),
            "heat_y": 0.3,
            "descriptors": dict.fromkeys(DESCRIPTORS, 0.5),
        }
        for i in range(maps)
    ]
    items = [{"id": a["activation_id"], "html": "<img>"} for a in acts]
    data = {"category": category, "annotator": "a@example.org", "items": items, "activations": acts}
    return {"id": task_id, "data": data}


def per_map(task_id: int) -> dict:
    return {
        "id": task_id,
        "data": {
            "annotator": "a@example.org",
            "activation_id": f"jay{task_id}:x0",
            "image_id": f"jay{task_id}",
            "category": "jay",
            "x_feature": 0,
            "heat_x": 0.3,
            "heat_y": 0.3,
            "overlay": "/o",
            "image": "/i",
        },
    }


def event(task: dict, annotation_id: int = 3) -> dict:
    return {
        "action": "ANNOTATION_CREATED",
        "annotation": {
            "id": annotation_id,
            "project": 2,
            "was_cancelled": False,
            "result": ranker({"g1": [task["data"]["activations"][0]["activation_id"]]}),
        },
        "task": task,
        "project": {"id": 2},
    }


@pytest.fixture
def ls():
    return FakeLabelStudio()


@pytest.fixture
def client(tmp_path, ls):
    settings = BackendSettings(state_dir=tmp_path / "state", basic_auth=SECRET)
    app = create_app(settings, label_studio=ls)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = authorization(*SECRET)
    yield client
    app.config["XNAMING_BACKEND"].wait_idle()


def post(client, path: str, body: dict):
    """Post ``body`` with Python's json (which writes NaN and Infinity, as a careless client)."""
    text = json.dumps(body)
    return client.post(path, data=text, content_type="application/json")


# -- maps per board and per request ----------------------------------------------------------


def test_a_board_of_the_limit_is_answered_and_one_more_map_is_413(client, ls) -> None:
    task = ls.add_task(board(MAX_BOARD_MAPS))
    answer = post(client, "/predict", {"tasks": [task], "project": PROJECT})
    assert answer.status_code == 200, answer.get_json()
    (prediction,) = answer.get_json()["results"][0]
    ranked = prediction["result"][0]["value"]["ranker"]
    assert sum(len(ids) for ids in ranked.values()) == MAX_BOARD_MAPS

    answer = post(client, "/predict", {"tasks": [board(MAX_BOARD_MAPS + 1, task_id=12)]})
    assert answer.status_code == 413
    message = answer.get_json()["error"]
    assert "tasks[0] (id 12)" in message
    assert "2,001 maps" in message
    assert "at most 2,000" in message
    assert "--mode per-map" in message  # what to do


def test_a_request_over_the_total_is_413_and_one_at_the_total_is_answered(client) -> None:
    tasks = [per_map(i) for i in range(MAX_REQUEST_MAPS)]
    answer = post(client, "/predict", {"tasks": tasks})
    assert answer.status_code == 200
    assert len(answer.get_json()["results"]) == MAX_REQUEST_MAPS

    answer = post(client, "/predict", {"tasks": [*tasks, per_map(-1)]})
    assert answer.status_code == 413
    message = answer.get_json()["error"]
    assert "20,001 maps" in message
    assert "at most 20,000" in message
    assert "fewer tasks" in message
    # Boards count by their maps; empty tasks still count one each.
    boards = [board(MAX_BOARD_MAPS, task_id=i) for i in range(MAX_REQUEST_MAPS // MAX_BOARD_MAPS)]
    answer = post(client, "/predict", {"tasks": [*boards, board(0, task_id=99)]})
    assert answer.status_code == 413
    assert "20,001 maps" in answer.get_json()["error"]


# -- body size ---------------------------------------------------------------------------------


class _Unreadable(io.RawIOBase):
    """A body one byte over the limit that fails the test if the backend reads any of it."""

    _size = MAX_REQUEST_BYTES + 1
    _at = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:  # the test client measures the body by seeking to its end
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self._at = offset + (self._size if whence == 2 else 0)
        return self._at

    def tell(self) -> int:
        return self._at

    def readinto(self, buffer) -> int:
        raise AssertionError("the backend read a body it should refuse unread")


@pytest.mark.parametrize("path", ["/predict", "/webhook", "/setup"])
def test_a_body_over_the_limit_is_refused_unread(client, path) -> None:
    answer = client.post(
        path,
        input_stream=_Unreadable(),
        content_type="application/json",
    )
    assert answer.status_code == 413
    assert "32 MiB" in answer.get_json()["error"]


# -- non-finite numbers -------------------------------------------------------------------------


def _with(body: dict, path: tuple, value: object) -> dict:
    node = body
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return body


PREDICT_CASES = [
    (("label_config",), "label_config"),
    (("tasks", 0, "id"), "tasks[0].id"),
    (("tasks", 0, "data", "activations", 5, "heat_x"), "tasks[0].data.activations[5].heat_x"),
    (
        ("tasks", 0, "data", "activations", 8, "descriptors", "share"),
        "tasks[0].data.activations[8].descriptors.share",
    ),
    (("params", "context", "result", 0, "value", "x"), "params.context.result[0].value.x"),
]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize(("path", "where"), PREDICT_CASES)
def test_predict_refuses_non_finite_numbers_anywhere_and_says_where(
    client, path, where, value
) -> None:
    body = {"tasks": [board(9)], "label_config": "", "params": {"context": {"result": [{}]}}}
    body["params"]["context"]["result"][0]["value"] = {}
    answer = post(client, "/predict", _with(body, path, value))
    assert answer.status_code == 400
    message = answer.get_json()["error"]
    assert message.startswith(where)
    assert json.dumps(value) in message  # NaN, Infinity or -Infinity
    if path[0] == "tasks" and path[2:3] == ("data",):
        assert "(task id 7)" in message


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize(
    ("path", "where"),
    [
        (("project", "id"), "project.id"),
        (("annotation", "result", 0, "value", "ranker", "x"), "annotation.result[0].value"),
        (("task", "data", "activations", 2, "heat_y"), "task.data.activations[2].heat_y"),
    ],
)
def test_webhook_refuses_non_finite_numbers_anywhere_and_says_where(
    client, path, where, value
) -> None:
    answer = post(client, "/webhook", _with(event(board(9)), path, value))
    assert answer.status_code == 400
    message = answer.get_json()["error"]
    assert message.startswith(where)
    assert json.dumps(value) in message
    if path[0] == "task":
        assert "(task id 7)" in message
    if path[0] == "annotation":
        assert "(annotation id 3)" in message


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("1e999", "overflows to infinity"),
        ("-1e400", "overflows to infinity"),
        (str(2**64), "out of range"),
    ],
)
def test_numbers_python_would_turn_into_infinity_or_overflow_are_refused(client, text, why) -> None:
    body = json.dumps({"tasks": [per_map(1)]}).replace('"heat_x": 0.3', f'"heat_x": {text}')
    answer = client.post("/predict", data=body, content_type="application/json")
    assert answer.status_code == 400
    assert answer.get_json()["error"].startswith("tasks[0].data.heat_x (task id 1)")
    assert why in answer.get_json()["error"]


@pytest.mark.parametrize("text", ["NaN", "nan", "inf", "-Infinity"])
def test_map_numbers_sent_as_non_finite_strings_are_refused(client, text) -> None:
    task = board(9)
    task["data"]["activations"][4]["heat_x"] = text
    answer = post(client, "/predict", {"tasks": [task]})
    assert answer.status_code == 400
    assert "tasks[0] (id 7): data.activations[4].heat_x" in answer.get_json()["error"]
    task = per_map(3)
    task["data"]["heat_y"] = text
    answer = post(client, "/webhook", event(board(2)) | {"task": task})
    assert answer.status_code == 400
    assert "task (id 3): data.heat_y" in answer.get_json()["error"]


def test_finite_numbers_and_json_errors_are_unchanged(client) -> None:
    assert post(client, "/predict", {"tasks": [board(9)]}).status_code == 200
    assert post(client, "/webhook", event(board(9))).status_code == 200
    answer = client.post("/predict", data="{", content_type="application/json")
    assert answer.status_code == 400
    assert "not JSON" in answer.get_json()["error"]


# -- the real backend process -------------------------------------------------------------------


BOUNDS_ANNOTATOR = "bounds@example.org"


@pytest.fixture(scope="module")
def boards_200(label_studio):
    """Board tasks of 200 maps each, published to a real Label Studio (``project`` added)."""
    from ls_backend.manager.client import Manager
    from tests.ls_backend.bundle_factory import make_bundle
    from xnaming.cli import main

    bundle = make_bundle(
        label_studio.files_root / "bounds-bundle",
        categories=("finch", "wren"),
        images_per_category=50,
        features=5,
    )
    common = ["--data-dir", str(label_studio.data_dir), "--annotators", BOUNDS_ANNOTATOR]
    assert main(["publish", str(bundle), *common]) == 0
    manager = Manager(label_studio.url, label_studio.token)
    (annotator,) = [a for a in manager.annotators() if a.email == BOUNDS_ANNOTATOR]
    (project,) = [p["id"] for p in annotator.projects]
    path = f"/api/projects/{project}/export?export_type=JSON&download_all_tasks=true"
    tasks = [
        {"id": t["id"], "data": t["data"], "project": project}
        for t in manager.request("GET", path).json()
    ]
    assert [len(task["data"]["activations"]) for task in tasks] == [200, 200]
    return tasks


@pytest.mark.slow
@pytest.mark.server
def test_real_backend_refuses_nan_and_huge_bodies_and_keeps_serving(
    label_studio, boards_200
) -> None:
    url, auth = label_studio.backend_url, label_studio.backend_auth
    task = json.loads(json.dumps(boards_200[0]))
    task["data"]["activations"][17]["heat_x"] = float("nan")  # as the issue met it
    for path, body in [("/predict", {"tasks": [task]}), ("/webhook", event(task))]:
        answer = requests.post(
            url + path,
            data=json.dumps(body),
            headers={"Content-Type": "application/json"},
            auth=auth,
            timeout=30,
        )
        assert answer.status_code == 400, answer.text
        assert "data.activations[17].heat_x" in answer.json()["error"]
        assert "Traceback" not in answer.text

    huge = b'{"tasks": [], "pad": "' + b"x" * MAX_REQUEST_BYTES + b'"}'
    answer = requests.post(
        url + "/predict",
        data=huge,
        headers={"Content-Type": "application/json"},
        auth=auth,
        timeout=60,
    )
    assert answer.status_code == 413
    assert "32 MiB" in answer.json()["error"]

    def chunks():  # no Content-Length: the backend stops reading at the limit
        for start in range(0, len(huge), 1 << 20):
            yield huge[start : start + (1 << 20)]

    answer = requests.post(
        url + "/predict",
        data=chunks(),
        headers={"Content-Type": "application/json"},
        auth=auth,
        timeout=60,
    )
    assert answer.status_code == 413

    assert requests.get(url + "/health", timeout=10).status_code == 200
    answer = requests.post(url + "/predict", json={"tasks": boards_200[:1]}, auth=auth, timeout=30)
    assert answer.status_code == 200
    assert answer.json()["results"][0][0]["result"]


@pytest.mark.slow
@pytest.mark.server
def test_real_backend_answers_100_concurrent_predicts_on_200_map_boards(
    label_studio, boards_200
) -> None:
    from ls_backend.server import login_session

    url, auth = label_studio.backend_url, label_studio.backend_auth
    # Some history, so the calls read the store as they would during annotation.
    session = login_session(
        label_studio.url, BOUNDS_ANNOTATOR, label_studio.password(BOUNDS_ANNOTATOR)
    )
    made = session.post(
        f"{label_studio.url}/api/tasks/{boards_200[1]['id']}/annotations/",
        json={"result": event(boards_200[1])["annotation"]["result"]},
        headers={"X-CSRFToken": session.cookies.get("csrftoken", ""), "Referer": label_studio.url},
        timeout=60,
    )
    assert made.status_code == 201, made.text[:300]
    start = Barrier(100)

    def call(index: int) -> tuple[int, int]:
        task = boards_200[index % len(boards_200)]
        start.wait()
        answer = requests.post(url + "/predict", json={"tasks": [task]}, auth=auth, timeout=120)
        ranked = answer.json()["results"][0][0]["result"][0]["value"]["ranker"]
        return answer.status_code, sum(len(ids) for ids in ranked.values())

    with ThreadPoolExecutor(max_workers=100) as pool:
        assert list(pool.map(call, range(100))) == [(200, 200)] * 100
