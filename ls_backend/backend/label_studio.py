"""What the backend reads from Label Studio, with the manager's token: the only source it trusts.

A webhook's body or a ``/predict`` body can be written by anyone who reaches the backend, so the
backend takes from them nothing but ids: an annotation is read back by id (its author, project,
task and result), a task by id within the project Label Studio says it belongs to, and a
project's annotator is the one whose organization holds it (xnaming's isolation,
``/api/xnaming/annotators``), not what the task data says (an annotator can edit their own tasks'
data). A task's project and a project's annotator do not change, so they are cached.

Tasks are read through the project's export filtered by id, not ``GET /api/tasks/ID/``: that view
asks the ML backend for a prediction when the task has none, which would call back into the
``/predict`` that is asking.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import requests

from ls_backend.backend.settings import BackendSettings
from ls_backend.isolation import ORGANIZATION_HEADER

__all__ = [
    "AnnotationRecord",
    "LabelStudioReader",
    "LabelStudioUnavailable",
    "Owner",
    "TaskRecord",
]


_IDS_PER_READ = 500  # task ids per export request (they travel in its URL)
_OWNERS_EVERY = 5.0  # seconds between two reads of the annotators' projects (new projects)


class LabelStudioUnavailable(RuntimeError):
    """Label Studio cannot be asked: no URL or token configured, down, or refusing the token."""


@dataclass(frozen=True)
class Owner:
    """The annotator a project belongs to: the one whose organization holds it."""

    email: str
    id: int


@dataclass(frozen=True)
class TaskRecord:
    """A task as Label Studio holds it, with its project's annotator."""

    id: int
    project: int
    data: dict
    owner: Owner

    @property
    def annotator(self) -> str:
        return self.owner.email


@dataclass(frozen=True)
class AnnotationRecord:
    """An annotation as Label Studio holds it."""

    id: int
    task: int
    project: int
    completed_by: int | None
    result: list
    was_cancelled: bool

    @classmethod
    def from_json(cls, data: dict) -> AnnotationRecord:
        author = data.get("completed_by")
        if isinstance(author, dict):  # some views nest the user
            author = author.get("id")
        return cls(
            id=int(data["id"]),
            task=int(data["task"]),
            project=int(data["project"]),
            completed_by=author if _is_int(author) else None,
            result=list(data.get("result") or []),
            was_cancelled=bool(data.get("was_cancelled")),
        )

    def as_export(self) -> dict:
        """The annotation as an export carries it (for the export reader)."""
        return {
            "id": self.id,
            "result": self.result,
            "was_cancelled": self.was_cancelled,
            "completed_by": self.completed_by,
        }


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class LabelStudioReader:
    """Label Studio as the manager sees it, for the backend.

    Parameters
    ----------
    settings
        Where Label Studio is and the manager's token (:meth:`BackendSettings.label_studio`).
    timeout
        Seconds per HTTP call.
    cache
        How many tasks to keep.
    """

    def __init__(self, settings: BackendSettings, *, timeout: float = 30, cache: int = 20_000):
        self.settings = settings
        self.timeout = timeout
        self._cache_size = cache
        self._tasks: OrderedDict[int, TaskRecord] = OrderedDict()
        self._organizations: dict[int, int | None] = {}
        self._lock = threading.Lock()
        self._reading: dict[int, threading.Lock] = {}
        self._owners: dict[int, Owner] = {}
        self._owners_read = -_OWNERS_EVERY
        self._access: tuple[str, str] = ("", "")  # (refresh token, access token)

    # -- HTTP ----------------------------------------------------------------------------

    def _authorization(self, token: str, refresh: bool) -> str:
        if token.count(".") != 2:  # not a JWT: a legacy token
            return f"Token {token}"
        url, _ = self.settings.label_studio()
        if refresh or self._access[0] != token:
            answer = requests.post(
                f"{url}/api/token/refresh/", json={"refresh": token}, timeout=self.timeout
            )
            if answer.status_code != 200:
                raise LabelStudioUnavailable(
                    f"Label Studio at {url} refused the manager's token ({answer.status_code})"
                )
            self._access = (token, answer.json()["access"])
        return f"Bearer {self._access[1]}"

    def request(self, method: str, path: str, *, organization: int | None = None, **kwargs):
        """One call as the manager; :class:`LabelStudioUnavailable` when it cannot be made."""
        url, token = self.settings.label_studio()
        if not (url and token):
            raise LabelStudioUnavailable(
                "no Label Studio URL and token: give --credentials (xnaming ls start does) or "
                "--label-studio-url and $LABEL_STUDIO_API_KEY"
            )
        headers = {} if organization is None else {ORGANIZATION_HEADER: str(organization)}
        try:
            for refresh in (False, True):
                headers["Authorization"] = self._authorization(token, refresh)
                answer = requests.request(
                    method, url + path, headers=headers, timeout=self.timeout, **kwargs
                )
                if answer.status_code != 401 or token.count(".") != 2:
                    break
        except requests.RequestException as error:
            raise LabelStudioUnavailable(f"Label Studio at {url}: {error}") from None
        if answer.status_code >= 500 or answer.status_code in (401, 403):
            raise LabelStudioUnavailable(
                f"{method} {path}: Label Studio answered {answer.status_code}"
            )
        return answer

    @property
    def configured(self) -> bool:
        return all(self.settings.label_studio())

    def wait_up(self, timeout: float = 180) -> bool:
        """Wait for Label Studio to answer (the backend may start first); False on timeout."""
        url, _ = self.settings.label_studio()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    return True
            except requests.RequestException:
                pass
            time.sleep(1)
        return False

    # -- reading -------------------------------------------------------------------------

    def annotation(self, annotation_id: int) -> AnnotationRecord | None:
        """The annotation, or ``None`` when Label Studio has none of that id."""
        answer = self.request("GET", f"/api/annotations/{int(annotation_id)}/")
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        return AnnotationRecord.from_json(answer.json())

    def task(self, task_id: int, project: int) -> TaskRecord | None:
        """Task ``task_id`` if it belongs to ``project``, else ``None`` (cached)."""
        return self.tasks_of(project, [task_id]).get(task_id)

    def tasks_of(self, project: int, ids: list[int]) -> dict[int, TaskRecord]:
        """The tasks of ``ids`` that belong to ``project``, by id (cached; those not cached
        are read in one export per :data:`_IDS_PER_READ`)."""
        found = self._cached(project, ids)
        missing = [i for i in dict.fromkeys(ids) if i not in found]
        if not missing:
            return found
        owner = self.owner(project)
        if owner is None:  # no annotator's project: nothing in it is answered or learnt
            return found
        with self._lock:
            reading = self._reading.setdefault(project, threading.Lock())
        with reading:  # concurrent asks in one project read each task once
            found |= self._cached(project, missing)
            missing = [i for i in missing if i not in found]
            for start in range(0, len(missing), _IDS_PER_READ):
                chunk = missing[start : start + _IDS_PER_READ]
                for task in self.export(project, ids=chunk) or []:
                    if task.get("id") in chunk and isinstance(task.get("data"), dict):
                        found[task["id"]] = TaskRecord(task["id"], project, task["data"], owner)
            with self._lock:
                for task_id in missing:
                    if task_id in found:
                        self._tasks[task_id] = found[task_id]
                while len(self._tasks) > self._cache_size:
                    self._tasks.popitem(last=False)
        return found

    def _cached(self, project: int, ids: list[int]) -> dict[int, TaskRecord]:
        found = {}
        with self._lock:
            for task_id in ids:
                known = self._tasks.get(task_id)
                if known is not None:
                    self._tasks.move_to_end(task_id)
                    if known.project == project:
                        found[task_id] = known
        return found

    def owner(self, project: int) -> Owner | None:
        """The annotator whose organization holds ``project`` (``None``: none does)."""
        with self._lock:
            known = self._owners.get(project)
            stale = time.monotonic() - self._owners_read > _OWNERS_EVERY
        if known is None and stale:  # a project published since, or no annotator's at all
            answer = self.request("GET", "/api/xnaming/annotators")
            answer.raise_for_status()
            owners = {
                int(p["id"]): Owner(str(a["email"]), int(a["id"]))
                for a in answer.json()["annotators"]
                for p in a.get("projects", [])
            }
            with self._lock:
                self._owners = owners
                self._owners_read = time.monotonic()
                known = owners.get(project)
        return known

    def export(self, project: int, *, ids: list[int] | None = None) -> list[dict] | None:
        """The project's tasks as its JSON export gives them: the annotated ones, or those of
        ``ids`` annotated or not; ``None`` when there is no such project."""
        params: dict[str, Any] = {"export_type": "JSON"}
        if ids is not None:
            params |= {"download_all_tasks": "true", "ids[]": [int(i) for i in ids]}
        answer = self.request("GET", f"/api/projects/{int(project)}/export", params=params)
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        return answer.json()

    def organization(self, project: int) -> int | None:
        """The organization of ``project`` (cached), or ``None`` when there is no such project."""
        if project not in self._organizations:
            answer = self.request("GET", f"/api/projects/{int(project)}/")
            found = answer.json().get("organization") if answer.status_code == 200 else None
            self._organizations[project] = found if _is_int(found) else None
        return self._organizations[project]

    # -- the backend's own predictions ---------------------------------------------------

    def predictions(self, project: int) -> list[dict]:
        answer = self.request("GET", f"/api/predictions/?project={int(project)}")
        answer.raise_for_status()
        return answer.json()

    def delete_prediction(self, prediction: int, *, organization: int | None) -> None:
        self.request("DELETE", f"/api/predictions/{int(prediction)}/", organization=organization)
