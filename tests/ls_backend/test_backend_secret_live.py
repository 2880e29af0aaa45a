"""The ML backend's secret (issue 29): made by `xnaming ls start`, kept 0600, given to Label Studio.

Before, `ls start` ran the backend with no secret, so any process on the machine could call
/webhook, /predict, /setup and /train. Now credentials.json holds a backend user and password,
the backend refuses a request without them, Label Studio's ML connection carries them (its
proposals still reach the annotator), and they appear in no log and on no command line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from ls_backend.backend.app import MODEL_VERSION
from ls_backend.manager.client import Manager
from ls_backend.server import login_session
from xnaming.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.server]

ANNOTATOR = "secret@example.org"
ROUTES = [("POST", "/predict"), ("POST", "/webhook"), ("POST", "/setup"), ("POST", "/train")]


def _secret(label_studio) -> tuple[str, str]:
    path = label_studio.data_dir / "credentials.json"
    assert path.stat().st_mode & 0o777 == 0o600
    stored = json.loads(path.read_text())
    assert stored.get("backend_user")
    assert stored.get("backend_password")
    return stored["backend_user"], stored["backend_password"]


@pytest.mark.parametrize(("method", "route"), ROUTES)
def test_the_backend_refuses_a_request_without_the_secret(label_studio, method, route) -> None:
    user, password = _secret(label_studio)
    url = label_studio.backend_url + route
    assert requests.request(method, url, json={}, timeout=30).status_code == 401
    wrong = requests.request(method, url, json={}, auth=(user, "not-it"), timeout=30)
    assert wrong.status_code == 401
    answer = requests.get(f"{label_studio.backend_url}/health", auth=(user, password), timeout=30)
    assert answer.status_code == 200


def test_label_studio_reaches_the_backend_with_the_secret(label_studio) -> None:
    user, _ = _secret(label_studio)
    common = ["--data-dir", str(label_studio.data_dir), "--categories", "jay"]
    assert main(["publish", str(label_studio.bundle), "--annotators", ANNOTATOR, *common]) == 0
    (record,) = [r for r in label_studio.recorded() if r.annotator == ANNOTATOR]
    manager = Manager(label_studio.url, label_studio.token)
    organization = next(o for o, p in manager.projects() if p["id"] == record.project_id)
    client = manager.client(organization)
    (connection,) = client.ml.list(project=record.project_id)
    assert (connection.auth_method, connection.basic_auth_user) == ("BASIC_AUTH", user)
    (hook,) = [h for h in client.webhooks.list(project=record.project_id) if "/webhook" in h.url]
    assert hook.headers["Authorization"].startswith("Basic ")
    # The annotator opens their board: Label Studio asks the backend, with the secret.
    session = login_session(label_studio.url, ANNOTATOR, label_studio.password(ANNOTATOR))
    (task,) = session.get(
        f"{label_studio.url}/api/tasks/?project={record.project_id}", timeout=60
    ).json()["tasks"]
    opened = session.get(f"{label_studio.url}/api/tasks/{task['id']}/", timeout=60).json()
    assert [p["model_version"] for p in opened["predictions"]] == [MODEL_VERSION]


def test_the_secret_is_in_no_log_and_on_no_command_line(label_studio) -> None:
    _, password = _secret(label_studio)
    data_dir = Path(label_studio.data_dir)
    for path in data_dir.rglob("*"):
        text = path.is_file() and path.suffix in {".log", ".json", ".txt", ".tmp"}
        if text and path.name != "credentials.json":
            assert password not in path.read_text(errors="replace"), path
    for process in label_studio.server._processes:
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode(errors="replace")
        assert password not in cmdline
