"""publish, collect and the ML backend against a real Label Studio server (see conftest)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
import requests

from ls_backend.backend.app import MODEL_VERSION
from ls_backend.backend.naming import DESCRIPTORS
from ls_backend.backend.store import NamingStore
from ls_backend.server import login_session
from tests.ls_backend.helpers import ranker, taxonomy, wait_for
from xnaming.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.server]

BOARD_ANNOTATOR = "board@example.org"
PER_MAP_ANNOTATOR = "permap@example.org"


def _tasks(client, project_id: int) -> list:
    return list(client.tasks.list(project=project_id, fields="all", page_size=1000))


def _project(label_studio, title: str):
    (project,) = [p for p in label_studio.projects() if p.title == title]
    return project


@pytest.fixture(scope="module")
def published(label_studio):
    """Both modes published once through the command line, as a project manager would."""
    common = ["--data-dir", str(label_studio.data_dir)]
    bundle = str(label_studio.bundle)
    assert main(["publish", bundle, "--annotators", BOARD_ANNOTATOR, *common]) == 0
    assert (
        main(["publish", bundle, "--annotators", PER_MAP_ANNOTATOR, "--mode", "per-map", *common])
        == 0
    )
    return {
        "board": _project(label_studio, f"xnaming board: {BOARD_ANNOTATOR}"),
        "per-map": _project(label_studio, f"xnaming per-map: {PER_MAP_ANNOTATOR}"),
    }


def test_credentials_are_private(label_studio) -> None:
    path = label_studio.data_dir / "credentials.json"
    assert path.stat().st_mode & 0o777 == 0o600
    stored = json.loads(path.read_text())
    assert stored["token"]
    assert stored["url"] == label_studio.url
    assert requests.get(f"{label_studio.url}/api/projects", timeout=30).status_code == 401


def test_server_accepts_the_configs_and_refuses_a_broken_one(label_studio) -> None:
    from label_studio_sdk.core.api_error import ApiError

    from label_config import board_config, per_map_config

    client = label_studio.client()
    for config in (board_config(groups=3, thumb_px=64), per_map_config()):
        project = client.projects.create(title="config check", label_config=config)
        assert client.projects.get(project.id).label_config.strip() == config.strip()
        client.projects.delete(project.id)
    with pytest.raises(ApiError):
        client.projects.create(
            title="broken", label_config=board_config().replace("</View>", "", 1)
        )


def test_publish_tasks_data_images_predictions(label_studio, published) -> None:
    client = label_studio.client()
    activations = pd.read_csv(label_studio.bundle / "activations.csv", dtype=str)
    board = _tasks(client, published["board"].id)
    assert sorted(t.data["category"] for t in board) == ["cardinal", "jay"]
    for task in board:
        expected = activations[activations["category"] == task.data["category"]]
        assert task.data["annotator"] == BOARD_ANNOTATOR
        assert sorted(i["id"] for i in task.data["items"]) == sorted(expected["activation_id"])
        by_id = {a["activation_id"]: a for a in task.data["activations"]}
        for row in expected.itertuples():
            assert by_id[row.activation_id]["image_id"] == row.image_id
            assert by_id[row.activation_id]["x_feature"] == int(row.x_feature)
            assert set(by_id[row.activation_id]["descriptors"]) == set(DESCRIPTORS)
        assert all("data:" not in i["html"] for i in task.data["items"])
        # The backend's proposal is there, with its one model version.
        (prediction,) = task.predictions
        assert prediction.model_version == MODEL_VERSION
        assert prediction.result[0]["type"] == "ranker"
    per_map = _tasks(client, published["per-map"].id)
    assert sorted(t.data["activation_id"] for t in per_map) == sorted(activations["activation_id"])
    one = per_map[0].data
    row = activations.set_index("activation_id").loc[one["activation_id"]]
    assert (one["image_id"], one["category"], str(one["x_feature"])) == (
        row.image_id,
        row.category,
        row.x_feature,
    )

    # Images load for the logged-in annotator, from Label Studio itself, and not for strangers.
    session = login_session(
        label_studio.url, BOARD_ANNOTATOR, label_studio.password(BOARD_ANNOTATOR)
    )
    src = board[0].data["items"][0]["html"].split("src='")[1].split("'")[0]
    for url in (src, one["overlay"], one["image"]):
        answer = session.get(label_studio.url + url, timeout=30)
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "image/png"
    assert requests.get(label_studio.url + src, timeout=30).status_code in (401, 403)


def test_publish_twice_duplicates_nothing_and_keeps_annotations(label_studio, published) -> None:
    client = label_studio.client()
    project = published["per-map"]
    task = _tasks(client, project.id)[0]
    annotation = client.annotations.create(
        id=task.id,
        result=taxonomy("tail"),
    )
    before = {p.id: len(_tasks(client, p.id)) for p in label_studio.projects()}
    users = len(list(client.users.list()))
    common = ["--data-dir", str(label_studio.data_dir)]
    assert (
        main(["publish", str(label_studio.bundle), "--annotators", BOARD_ANNOTATOR, *common]) == 0
    )
    assert (
        main(
            [
                "publish",
                str(label_studio.bundle),
                "--annotators",
                PER_MAP_ANNOTATOR,
                "--mode",
                "per-map",
                *common,
            ]
        )
        == 0
    )
    assert {p.id: len(_tasks(client, p.id)) for p in label_studio.projects()} == before
    assert len(list(client.users.list())) == users
    assert len(list(client.ml.list(project=project.id))) == 1
    record = label_studio.recorded()
    mine = {(r.annotator, r.mode): r.project_id for r in record}
    assert mine[(PER_MAP_ANNOTATOR, "per-map")] == project.id
    assert mine[(BOARD_ANNOTATOR, "board")] == published["board"].id
    assert len(record) == len({r.project_id for r in record})
    assert (label_studio.data_dir / "projects.json").stat().st_mode & 0o777 == 0o600
    assert client.annotations.get(annotation.id).result[0]["value"]["taxonomy"] == [["tail"]]
    for task in _tasks(client, published["board"].id):
        assert len(task.predictions) == 1
    client.annotations.delete(annotation.id)


def _asked(task) -> dict:
    """A task as Label Studio sends it to the backend (which checks it with Label Studio)."""
    return {"id": task.id, "data": task.data, "project": task.project}


def _backend_predict(label_studio, tasks: list[dict]) -> list:
    answer = requests.post(
        f"{label_studio.backend_url}/predict",
        json={"tasks": tasks},
        auth=label_studio.backend_auth,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["results"]


def test_webhook_changes_the_next_proposal_and_collect_reads_everything(
    label_studio, published, tmp_path
) -> None:
    client = label_studio.client()
    tasks = {t.data["activation_id"]: t for t in _tasks(client, published["per-map"].id)}
    first, similar = tasks["cardinal_0000:x0"], tasks["cardinal_0001:x0"]
    assert _backend_predict(label_studio, [_asked(similar)]) == [[]]

    # As the annotators themselves: collect counts only a project's own annotator's work.
    per_map_annotator = label_studio.annotator_client(PER_MAP_ANNOTATOR)
    per_map_annotator.annotations.create(id=first.id, result=taxonomy("head"))
    # The webhook reaches the backend, which learns in the background.
    assert wait_for(lambda: _backend_predict(label_studio, [_asked(similar)]) != [[]])
    (proposal,) = _backend_predict(label_studio, [_asked(similar)])[0]
    assert proposal["result"][0]["value"]["taxonomy"] == [["head"]]

    per_map_annotator.annotations.create(
        id=tasks["cardinal_0000:x1"].id,
        result=[
            {
                "type": "choices",
                "from_name": "discard",
                "to_name": "overlay",
                "value": {"choices": ["discard"]},
            }
        ],
    )
    per_map_annotator.annotations.create(
        id=tasks["cardinal_0000:x2"].id, result=taxonomy("tail"), was_cancelled=True
    )
    board = {t.data["category"]: t for t in _tasks(client, published["board"].id)}
    label_studio.annotator_client(BOARD_ANNOTATOR).annotations.create(
        id=board["jay"].id,
        result=[
            *ranker({"_": [], "g2": ["jay_0000:x0", "jay_0001:x0"], "discard": ["jay_0000:x1"]}),
            {
                "type": "textarea",
                "from_name": "g2_name",
                "to_name": "maps",
                "value": {"text": ["crest"]},
            },
        ],
    )
    out = tmp_path / "namings.csv"
    assert main(["collect", "--data-dir", str(label_studio.data_dir), "--out", str(out)]) == 0
    namings = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(namings.columns) == ["annotator", "category", "activation_id", "concept", "status"]
    mine = namings.set_index(["annotator", "activation_id"])
    assert tuple(mine.loc[(PER_MAP_ANNOTATOR, "cardinal_0000:x0")]) == ("cardinal", "head", "named")
    assert tuple(mine.loc[(PER_MAP_ANNOTATOR, "cardinal_0000:x1")]) == ("cardinal", "", "discarded")
    assert tuple(mine.loc[(PER_MAP_ANNOTATOR, "cardinal_0000:x2")]) == ("cardinal", "", "unnamed")
    assert tuple(mine.loc[(BOARD_ANNOTATOR, "jay_0000:x0")]) == ("jay", "crest", "named")
    assert tuple(mine.loc[(BOARD_ANNOTATOR, "jay_0001:x0")]) == ("jay", "crest", "named")
    assert tuple(mine.loc[(BOARD_ANNOTATOR, "jay_0000:x1")]) == ("jay", "", "discarded")
    n_activations = len(pd.read_csv(label_studio.bundle / "activations.csv"))
    for annotator in (BOARD_ANNOTATOR, PER_MAP_ANNOTATOR):
        assert (namings["annotator"] == annotator).sum() == n_activations
    ours = namings[namings["annotator"].isin([BOARD_ANNOTATOR, PER_MAP_ANNOTATOR])]
    assert (ours["status"] == "named").sum() == 3
    raw = list((tmp_path / "namings-exports").glob("project-*.json"))
    assert len(raw) >= 2
    assert all(isinstance(json.loads(p.read_text()), list) for p in raw)


def test_backend_under_50_concurrent_predicts(label_studio, published) -> None:
    client = label_studio.client()
    tasks = [_asked(t) for t in _tasks(client, published["board"].id)]

    def call(i: int) -> int:
        answer = requests.post(
            f"{label_studio.backend_url}/predict",
            json={"tasks": [tasks[i % len(tasks)]]},
            auth=label_studio.backend_auth,
            timeout=60,
        )
        return answer.status_code if answer.json()["results"][0] else -1

    with ThreadPoolExecutor(max_workers=50) as pool:
        assert list(pool.map(call, range(50))) == [200] * 50


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/predict", "{"),
        ("/predict", '{"tasks": "none"}'),
        ("/predict", '{"tasks": [{"id": 1, "data": {"category": "c", "activations": [{}]}}]}'),
        ("/webhook", '{"action": "ANNOTATION_UPDATED", "annotation": {"id": 1, "result": {}}}'),
        ("/webhook", "[1, 2]"),
    ],
)
def test_real_backend_answers_400_with_a_message(label_studio, path, body) -> None:
    answer = requests.post(
        label_studio.backend_url + path,
        data=body,
        headers={"Content-Type": "application/json"},
        auth=label_studio.backend_auth,
        timeout=30,
    )
    assert answer.status_code == 400
    assert answer.json()["error"]
    assert "Traceback" not in answer.text


def test_backend_killed_and_restarted_keeps_serving_and_forgets_nothing(
    label_studio, published
) -> None:
    client = label_studio.client()
    tasks = {t.data["activation_id"]: t for t in _tasks(client, published["per-map"].id)}
    similar = tasks["cardinal_0001:x0"]
    before = _backend_predict(label_studio, [_asked(similar)])
    assert before != [[]]
    label_studio.server.restart_backend()
    after = _backend_predict(label_studio, [_asked(similar)])
    assert after == before
    # Every annotation Label Studio has is in the backend's state after the start-up resync.
    exported = json.loads(
        b"".join(client.projects.exports.download_sync(published["per-map"].id, export_type="JSON"))
    )
    expected = {a["id"] for t in exported for a in t["annotations"] if not a["was_cancelled"]}
    store = NamingStore(label_studio.data_dir / "backend" / "namings.sqlite3")
    try:
        assert wait_for(lambda: expected <= store.annotation_ids())
    finally:
        store.close()


def test_ls_start_reuses_its_data_and_stops_both_servers_on_ctrl_c(label_studio, published) -> None:
    """`xnaming ls start` on the session's data dir: same login and token, same projects."""
    import os
    import signal
    import socket
    import subprocess
    import sys

    from ls_backend.server import BACKEND_HOST, load_credentials

    before = load_credentials(label_studio.data_dir)
    projects = sorted(p.id for p in label_studio.projects())
    server = label_studio.server
    server.stop()  # the fixture's servers; started again below for the rest of the session
    command = [
        sys.executable, "-m", "xnaming.cli", "ls", "start",
        "--data-dir", str(label_studio.data_dir),
        "--port", str(server.port),
        "--backend-port", str(server.backend_port),
        "--files-root", str(label_studio.files_root),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Next:"):
                break
        printed = "".join(lines)
        assert f"Label Studio: {label_studio.url}" in printed
        assert f"log in as {before.admin_email} / {before.admin_password}" in printed
        after = load_credentials(label_studio.data_dir)
        assert after.token == before.token
        assert sorted(p.id for p in label_studio.projects()) == projects
        health = f"{label_studio.backend_url}/health"
        assert requests.get(health, auth=label_studio.backend_auth, timeout=10).status_code == 200
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            process.wait(60)
    for host, port in (("127.0.0.1", server.port), (BACKEND_HOST, server.backend_port)):
        with socket.socket() as sock:
            assert sock.connect_ex((host, port)) != 0, f"port {port} still answers"
    server.start()
