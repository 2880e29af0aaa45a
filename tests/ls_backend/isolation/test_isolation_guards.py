"""What an annotator found to do inside their own organization (issue 29), against the real server.

Each refusal sits next to the same kind of call that still works, so a 403 or 404 cannot come
from a wrong URL: a project's title and labeling config stay the manager's, Data Manager views
are made only in one's own project and a foreign view is not found (not a 500), a URL import of
a loopback service is refused (SSRF protection on), and a local file above the files root is not
found (not a 500).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest

from ls_backend.manager.client import Manager
from tests.ls_backend.isolation.test_isolation import AUTHS, PAIRS, _annotator
from tests.ls_backend.isolation_helpers import Annotator
from xnaming.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.server]

ALICE, BOB = "guard-alice@example.org", "guard-bob@example.org"
REFUSED = {403, 404}


@pytest.fixture(scope="module")
def people(label_studio) -> dict[str, Annotator]:
    command = ["publish", str(label_studio.bundle), "--annotators", f"{ALICE},{BOB}"]
    assert main([*command, "--no-backend", "--data-dir", str(label_studio.data_dir)]) == 0
    manager = Manager(label_studio.url, label_studio.token)
    return {email: _annotator(label_studio, manager, email) for email in (ALICE, BOB)}


def _pair(people, me: str, other: str) -> tuple[Annotator, Annotator]:
    translate = {"iso-alice@example.org": ALICE, "iso-bob@example.org": BOB}
    return people[translate[me]], people[translate[other]]


@pytest.mark.parametrize("auth", AUTHS)
def test_a_project_title_and_config_stay_the_managers(label_studio, people, auth) -> None:
    alice, bob = people[ALICE], people[BOB]
    path = f"/api/projects/{alice.project_id}/"
    before = alice.call(auth, "GET", path).json()
    for body in (
        {"title": f"xnaming board: {BOB}"},
        {"label_config": "<View><Text name='t' value='$category'/></View>"},
    ):
        for method in ("PATCH", "PUT"):
            answer = alice.call(auth, method, path, json=body)
            assert answer.status_code == 403, (method, body, answer.status_code, answer.text[:200])
    assert alice.call(auth, "DELETE", path).status_code == 403
    after = alice.call(auth, "GET", path).json()
    assert (after["title"], after["label_config"]) == (before["title"], before["label_config"])
    assert bob.email not in after["title"]
    # Her own work in the project still goes on.
    assert alice.call(auth, "GET", f"/api/tasks/{alice.task_ids[0]}/").status_code == 200


@pytest.mark.parametrize("auth", AUTHS)
@pytest.mark.parametrize(("me", "other"), PAIRS)
def test_views_only_in_ones_own_project(people, me, other, auth) -> None:
    mine, theirs = _pair(people, me, other)
    view = {"data": {"title": "mine", "filters": {"conjunction": "and", "items": []}}}
    own = mine.call(auth, "POST", "/api/dm/views/", json={**view, "project": mine.project_id})
    assert own.status_code == 201, own.text[:200]
    answer = mine.call(auth, "POST", "/api/dm/views/", json={**view, "project": theirs.project_id})
    assert answer.status_code in REFUSED, answer.text[:200]
    listed = theirs.call(auth, "GET", f"/api/dm/views/?project={theirs.project_id}").json()
    assert not [v for v in listed if v["data"].get("title") == "mine"]
    # A view of the other's: listing tasks through it is not found, not a server error.
    their_view = theirs.call(
        auth, "POST", "/api/dm/views/", json={**view, "project": theirs.project_id}
    ).json()["id"]
    for path in (
        f"/api/tasks/?view={their_view}",
        f"/api/tasks/?view={their_view}&project={mine.project_id}",
    ):
        answer = mine.call(auth, "GET", path)
        assert answer.status_code == 404, (path, answer.status_code, answer.text[:200])
    assert mine.call(auth, "GET", f"/api/tasks/?view={own.json()['id']}").status_code == 200
    for person, made in ((mine, own.json()["id"]), (theirs, their_view)):
        assert person.call(auth, "DELETE", f"/api/dm/views/{made}/").status_code == 204


class _Loopback(BaseHTTPRequestHandler):
    """A service on 127.0.0.1 that counts who reached it."""

    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body = b'[{"category": "secret from the loopback service"}]'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def loopback_service():
    server = HTTPServer(("127.0.0.1", 0), _Loopback)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Loopback.hits = []
    try:
        yield f"http://127.0.0.1:{server.server_port}/tasks.json", _Loopback.hits
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("auth", AUTHS)
def test_a_url_import_of_a_loopback_service_is_refused(
    label_studio, people, loopback_service, auth
) -> None:
    url, hits = loopback_service
    alice = people[ALICE]
    path = f"/api/projects/{alice.project_id}/import"
    before = len(alice.task_ids)
    answer = alice.call(auth, "POST", path, data={"url": url})
    assert answer.status_code == 403, answer.text[:300]  # tasks are the manager's
    # SSRF protection on: not even the manager's import reaches the service.
    manager = Manager(label_studio.url, label_studio.token)
    refused = manager.request("POST", path, data={"url": url})
    assert hits == [], refused.text[:300]
    tasks = alice.call(auth, "GET", f"/api/tasks/?project={alice.project_id}").json()["tasks"]
    assert len(tasks) == before
    assert "loopback" not in str(tasks)


@pytest.mark.parametrize("auth", AUTHS)
def test_a_local_file_above_the_files_root_is_not_found(label_studio, people, auth) -> None:
    alice = people[ALICE]
    task = alice.call(auth, "GET", f"/api/tasks/{alice.task_ids[0]}/").json()
    src = task["data"]["items"][0]["html"].split("src='")[1].split("'")[0]
    assert alice.call(auth, "GET", src).status_code == 200
    for path in ("../../etc/passwd", "../" * 12 + "etc/passwd", "a/../../../etc/hostname"):
        answer = alice.call(auth, "GET", f"/data/local-files/?d={path}")
        assert answer.status_code == 404, (path, answer.status_code)
    manager = Manager(label_studio.url, label_studio.token)
    assert manager.request("GET", "/data/local-files/?d=../../etc/passwd").status_code == 404
