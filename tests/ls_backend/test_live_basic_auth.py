"""The ML backend behind basic auth, connected to the session's real Label Studio.

Label Studio sends the credentials on its own calls (/setup, /predict) but creates the
backend's webhook without them; publish adds them to the webhook. This proves both paths.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import requests

from ls_backend.backend.app import MODEL_VERSION
from ls_backend.backend.store import NamingStore
from ls_backend.manager.publish import publish
from ls_backend.server import BACKEND_HOST, free_port, load_credentials, login_session
from tests.ls_backend.helpers import ranker, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.server]

USER, PASSWORD = "xnaming", "s3cret-for-tests"
ANNOTATOR = "auth@example.org"


@pytest.fixture
def guarded_backend(tmp_path, label_studio):
    """A second ML backend process that requires basic auth (reading the session's Label
    Studio, as the one ls start runs)."""
    port = free_port()
    env = {**os.environ, "XNAMING_BACKEND_USER": USER, "XNAMING_BACKEND_PASSWORD": PASSWORD}
    command = [sys.executable, "-m", "xnaming.cli", "ls", "backend", "--host", BACKEND_HOST]
    command += ["--port", str(port), "--state", str(tmp_path / "state")]
    command += ["--credentials", str(label_studio.data_dir / "credentials.json")]
    log = (tmp_path / "backend.log").open("w")
    process = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://{BACKEND_HOST}:{port}"

    def up() -> bool:
        try:
            return requests.get(f"{url}/versions", timeout=2).status_code == 401
        except requests.RequestException:
            return False

    try:
        assert wait_for(up, timeout=120), (tmp_path / "backend.log").read_text()
        yield url, tmp_path / "state" / "namings.sqlite3"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def test_label_studio_reaches_a_backend_behind_basic_auth(label_studio, guarded_backend) -> None:
    backend_url, store_path = guarded_backend
    assert (
        requests.post(f"{backend_url}/predict", json={"tasks": []}, timeout=10).status_code == 401
    )
    credentials = load_credentials(label_studio.data_dir)
    client = label_studio.client()
    (done,) = publish(
        label_studio.bundle,
        [ANNOTATOR],
        url=credentials.url,
        token=credentials.token,
        files_root=credentials.files_root,
        mode="board",
        categories=["jay"],
        backend_url=backend_url,
        backend_auth=(USER, PASSWORD),
        progress=lambda line: None,
    )
    try:
        # Label Studio called /predict with the credentials: the proposal is on the task.
        (task,) = client.tasks.list(project=done.project_id, fields="all")
        assert [p.model_version for p in task.predictions] == [MODEL_VERSION]
        (hook,) = [h for h in client.webhooks.list(project=done.project_id) if "/webhook" in h.url]
        assert hook.headers["Authorization"].startswith("Basic ")

        # The annotator's annotation reaches the guarded backend through the patched webhook
        # (the backend learns from the project's own annotator only).
        ids = [a["activation_id"] for a in task.data["activations"]]
        session = login_session(credentials.url, ANNOTATOR, done.password)
        answer = session.post(
            f"{credentials.url}/api/tasks/{task.id}/annotations/",
            json={"result": ranker({"g1": ids[:3], "_": ids[3:]})},
            headers={
                "X-CSRFToken": session.cookies.get("csrftoken", ""),
                "Referer": credentials.url,
            },
            timeout=60,
        )
        assert answer.status_code == 201, answer.text[:300]
        annotation_id = answer.json()["id"]
        store = NamingStore(store_path)
        try:
            assert wait_for(lambda: annotation_id in store.annotation_ids(), timeout=30)
            named = [n for n in store.namings_of(ANNOTATOR) if n.status == "named"]
            assert sorted(n.map.activation_id for n in named) == sorted(ids[:3])
        finally:
            store.close()
    finally:
        client.projects.delete(done.project_id)
