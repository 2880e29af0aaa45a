"""Session fixtures of the Label Studio tests: one real Label Studio server (and ML backend).

The server is started with the code ``xnaming ls start`` runs (:class:`LabelStudioServer`), on
free ports, with a private data directory, and stopped at the end of the session; it serves a
hand-made bundle (:mod:`tests.ls_backend.bundle_factory`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.ls_backend.bundle_factory import make_bundle


@dataclass
class LiveLabelStudio:
    """A running Label Studio with the ML backend, and a hand-made bundle it can serve."""

    server: object  # ls_backend.server.LabelStudioServer
    url: str
    token: str
    backend_url: str
    data_dir: Path
    files_root: Path
    bundle: Path
    _annotator_tokens: dict = field(default_factory=dict, repr=False)

    def client(self):
        from label_studio_sdk import LabelStudio

        return LabelStudio(base_url=self.url, api_key=self.token)

    def projects(self) -> list:
        """Every project the manager reaches, in every annotator's organization (SDK objects)."""
        from ls_backend.manager.client import Manager

        manager = Manager(self.url, self.token)
        return [manager.client(o).projects.get(p["id"]) for o, p in manager.projects()]

    @property
    def backend_auth(self) -> tuple[str, str]:
        """The ML backend's basic auth (made by ``xnaming ls start``), for direct calls."""
        from ls_backend.server import load_credentials

        auth = load_credentials(self.data_dir).backend_auth
        assert auth is not None, "ls start made no backend secret"
        return auth

    def projects_book(self):
        """What publish recorded in the data dir (:class:`ProjectBook`)."""
        from ls_backend.manager.projects import ProjectBook

        return ProjectBook.in_data_dir(self.data_dir)

    def recorded(self):
        """The projects publish recorded for this server."""
        return self.projects_book().projects(self.url)

    def password(self, email: str) -> str:
        from ls_backend.server import load_credentials

        known = load_credentials(self.data_dir).annotators  # data dirs of before the record
        return (known | self.projects_book().passwords(self.url))[email]

    def annotator_client(self, email: str):
        """An SDK client acting as annotator ``email`` (their own personal access token).

        collect counts only an annotator's own annotations: tests annotate through this.
        """
        from label_studio_sdk import LabelStudio

        from ls_backend.server import login_session

        if email not in self._annotator_tokens:
            session = login_session(self.url, email, self.password(email))
            answer = session.post(
                f"{self.url}/api/token/",
                headers={"X-CSRFToken": session.cookies.get("csrftoken", ""), "Referer": self.url},
                timeout=30,
            )
            answer.raise_for_status()
            self._annotator_tokens[email] = answer.json()["token"]
        return LabelStudio(base_url=self.url, api_key=self._annotator_tokens[email])


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory):
    """A real Label Studio server with the xnaming ML backend, for the whole session."""
    from ls_backend.server import LabelStudioServer, free_port

    root = tmp_path_factory.mktemp("label-studio")
    files_root = root / "files"
    bundle = make_bundle(files_root / "bundle")
    port = free_port()
    backend_port = free_port()
    while backend_port == port:
        backend_port = free_port()
    server = LabelStudioServer(
        root / "data", port=port, files_root=files_root, backend_port=backend_port
    )
    credentials = server.start()
    try:
        yield LiveLabelStudio(
            server=server,
            url=credentials.url,
            token=credentials.token,
            backend_url=credentials.backend_url,
            data_dir=root / "data",
            files_root=files_root,
            bundle=bundle,
        )
    finally:
        server.stop()
