"""Annotators as they reach Label Studio: a logged-in session or a personal access token.

For the isolation tests: each call returns the real HTTP answer, so a test can say which
status Label Studio gave.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import requests

from ls_backend.server import ISOLATION_SETTINGS, login_session


@dataclass
class Annotator:
    """One annotator's ids on the server and both ways they can call it."""

    email: str
    password: str
    user_id: int
    organization: int
    project_id: int
    task_ids: list[int]
    annotation_id: int  # one annotation they made in their own project
    url: str
    session: requests.Session = field(repr=False)
    token: str = field(repr=False)  # their personal access token

    def call(self, auth: str, method: str, path: str, **kwargs) -> requests.Response:
        """``method path`` as this annotator, through ``auth`` ``"session"`` or ``"token"``."""
        headers = dict(kwargs.pop("headers", {}))
        if auth == "session":
            csrf = self.session.cookies.get("csrftoken", "")
            headers |= {"X-CSRFToken": csrf, "Referer": self.url}
            return self.session.request(
                method, self.url + path, headers=headers, timeout=60, **kwargs
            )
        access = requests.post(
            f"{self.url}/api/token/refresh/", json={"refresh": self.token}, timeout=30
        )
        access.raise_for_status()
        headers["Authorization"] = f"Bearer {access.json()['access']}"
        return requests.request(method, self.url + path, headers=headers, timeout=60, **kwargs)


def sign_in(url: str, email: str, password: str) -> tuple[requests.Session, str]:
    """A logged-in session and the personal access token the annotator makes with it."""
    session = login_session(url, email, password)
    answer = session.post(
        f"{url}/api/token/",
        headers={"X-CSRFToken": session.cookies.get("csrftoken", ""), "Referer": url},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return session, answer.json()["token"]


def run_in_label_studio(data_dir: Path, code: str) -> str:
    """Run ``code`` with Label Studio's models, on the session server's database (SQLite).

    For what no HTTP route may do (that is the point): planting a foreign annotation.
    """
    import label_studio

    setup = (
        "import sys, django\n"
        f"sys.path.insert(0, {str(Path(label_studio.__file__).parent)!r})\n"
        "django.setup()\n"
    )
    env = {
        **os.environ,
        "LABEL_STUDIO_BASE_DATA_DIR": str(Path(data_dir) / "base"),
        "DJANGO_SETTINGS_MODULE": ISOLATION_SETTINGS,
        "SENTRY_DSN": "",
    }
    done = subprocess.run(
        [sys.executable, "-c", setup + code],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def export(manager, project_id: int) -> list[dict]:
    """A project's full JSON export, as the manager gets it."""
    organization = next(o for o, p in manager.projects() if p["id"] == project_id)
    chunks = manager.client(organization).projects.exports.download_sync(
        project_id, export_type="JSON", download_all_tasks=True
    )
    return json.loads(b"".join(chunks))
