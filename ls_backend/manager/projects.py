"""The manager's record of what ``xnaming publish`` made: which project is whose, and passwords.

A project's title is only a label: Label Studio lets the manager rename it, and it once let the
annotator do so (alice renamed hers "xnaming board: bob@..." and collect counted her work as
nobody's). So publish records each project by its id, with its annotator (e-mail and user id)
and mode, and ``collect`` and ``status`` read that record, never titles. The record also keeps
each new annotator's password from the moment Label Studio made the account, so a publish that
fails half-way loses no password.

The record is ``DATA_DIR/projects.json`` (mode 0600, beside ``credentials.json``), per Label
Studio URL, so one data dir can serve several servers::

    {"version": 2,
     "projects": [{"url", "project_id", "annotator", "annotator_id", "mode", "title", "bundle"}],
     "passwords": {"<url>": {"<e-mail>": "<password>"}}}

Files written before version 2 (a list of project entries, passwords in credentials.json) are
read as they are and written back in this form.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

__all__ = ["PROJECTS_FILE", "ProjectBook", "ProjectRecord"]

PROJECTS_FILE = "projects.json"
_VERSION = 2


def _server(url: str) -> str:
    return url.rstrip("/")


@dataclass(frozen=True)
class ProjectRecord:
    """One project that publish made: its id on the server at ``url`` and whose it is."""

    url: str
    project_id: int
    annotator: str  # e-mail
    mode: str
    annotator_id: int | None = None  # Label Studio's user id (None in records before version 2)
    title: str = ""  # as made; for people reading the file, never for matching
    bundle: str = ""

    @classmethod
    def from_json(cls, data: dict) -> ProjectRecord:
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["url"] = _server(str(values["url"]))
        values["project_id"] = int(values["project_id"])
        if values.get("annotator_id") is not None:
            values["annotator_id"] = int(values["annotator_id"])
        return cls(**values)


class ProjectBook:
    """``DATA_DIR/projects.json``: every change is written at once (0600, atomically).

    Parameters
    ----------
    path
        The file; None keeps the record in memory only (a library call without a data dir).
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self._projects: list[ProjectRecord] = []
        self._passwords: dict[str, dict[str, str]] = {}
        if self.path is not None and self.path.exists():
            self._read(json.loads(self.path.read_text(encoding="utf-8")))

    @classmethod
    def in_data_dir(cls, data_dir: str | Path) -> ProjectBook:
        """The book of a data dir (``xnaming ls start``'s, or any folder of the manager's)."""
        return cls(Path(data_dir) / PROJECTS_FILE)

    def _read(self, stored) -> None:
        entries = stored if isinstance(stored, list) else stored.get("projects", [])
        self._projects = [ProjectRecord.from_json(entry) for entry in entries]
        if isinstance(stored, dict):
            self._passwords = {
                _server(url): dict(known) for url, known in stored.get("passwords", {}).items()
            }

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        content = {
            "version": _VERSION,
            "projects": [asdict(record) for record in self._projects],
            "passwords": self._passwords,
        }
        tmp = self.path.with_suffix(".tmp")
        # 0600 from the start: the file holds the annotators' passwords.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            json.dump(content, stream, indent=2)
        os.chmod(tmp, 0o600)
        tmp.replace(self.path)
        os.chmod(self.path, 0o600)

    # -- projects ------------------------------------------------------------------------

    def projects(self, url: str) -> list[ProjectRecord]:
        """The projects recorded for the server at ``url``, in project-id order."""
        found = [r for r in self._projects if r.url == _server(url)]
        return sorted(found, key=lambda r: r.project_id)

    def find(self, url: str, annotator: str, mode: str) -> ProjectRecord | None:
        """The recorded project of ``annotator`` in ``mode`` on ``url``, if any."""
        for record in self.projects(url):
            if record.annotator.lower() == annotator.lower() and record.mode == mode:
                return record
        return None

    def record(self, project: ProjectRecord) -> None:
        """Add (or replace: same server and project id) a project, and save."""
        project = ProjectRecord.from_json(asdict(project))
        self._projects = [
            r
            for r in self._projects
            if (r.url, r.project_id) != (project.url, project.project_id)
            and not (
                r.url == project.url
                and r.annotator.lower() == project.annotator.lower()
                and r.mode == project.mode
            )
        ]
        self._projects.append(project)
        self._save()

    # -- passwords -----------------------------------------------------------------------

    def passwords(self, url: str) -> dict[str, str]:
        """E-mail -> password of the accounts publish made on ``url`` (a copy)."""
        return dict(self._passwords.get(_server(url), {}))

    def store_password(self, url: str, email: str, password: str) -> None:
        """Keep a new account's password, and save at once."""
        self._passwords.setdefault(_server(url), {})[email] = password
        self._save()
