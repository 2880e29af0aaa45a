"""What the benchmarks against a real Label Studio share: an annotator's hands, the backend's
state and Label Studio's own events.

The backend trusts only Label Studio: it answers ``/predict`` for tasks Label Studio holds in the
project the body names, and learns an annotation only by reading it back by id. So a benchmark
of real work publishes real tasks, annotates them as the annotator does (their own session,
through Label Studio's API, which then calls the backend's webhook itself) and asks ``/predict``
with the task's id and project, with the backend's secret.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from pathlib import Path

import requests

__all__ = [
    "AnnotatorHands",
    "board_sorted_by_part",
    "held",
    "learning",
    "percentile",
    "predict_body",
    "project_tasks",
    "refits",
    "wait_learned",
    "webhook_event",
]


class AnnotatorHands:
    """An annotator logged in to Label Studio's web UI, submitting as the labeling UI does."""

    def __init__(self, url: str, email: str, password: str) -> None:
        from ls_backend.server import login_session

        self.url = url
        self.session = login_session(url, email, password)
        self._headers = {"X-CSRFToken": self.session.cookies.get("csrftoken", ""), "Referer": url}

    def submit(self, task_id: int, result: list[dict]) -> int:
        """Annotate task ``task_id`` with ``result``; the new annotation's id."""
        answer = self.session.post(
            f"{self.url}/api/tasks/{int(task_id)}/annotations/",
            json={"result": result, "lead_time": 1.0},
            headers=self._headers,
            timeout=120,
        )
        if answer.status_code != 201:
            raise RuntimeError(f"submit failed: {answer.status_code} {answer.text[:300]}")
        return int(answer.json()["id"])


def board_sorted_by_part(task: dict, parts) -> list[dict]:
    """A board's result sorted by the hand-made bundle's parts (``parts``: activation id ->
    part): heads in a group named "beak", wings in "wing", tails unsorted, leaves discarded."""
    from label_config import BOARD_DISCARD, UNSORTED, group_bucket
    from tests.ls_backend.helpers import group_names, ranker

    ids = [a["activation_id"] for a in task["data"]["activations"]]
    by_part = {p: [a for a in ids if parts[a] == p] for p in ("head", "wing", "tail", "leaves")}
    buckets = {UNSORTED: by_part["tail"], group_bucket(1): by_part["head"]}
    buckets |= {group_bucket(2): by_part["wing"], BOARD_DISCARD: by_part["leaves"]}
    return ranker(buckets) + group_names({1: "beak", 2: "wing"})


def project_tasks(manager, project: int) -> list[dict]:
    """Every task of ``project`` as its JSON export gives them (as the manager)."""
    path = f"/api/projects/{int(project)}/export?export_type=JSON&download_all_tasks=true"
    answer = manager.request("GET", path)
    answer.raise_for_status()
    return answer.json()


def predict_body(tasks: list[dict], project: int) -> dict:
    """A ``/predict`` body as Label Studio sends it: the tasks and ``"<project>.<version>"``."""
    return {
        "tasks": [{"id": t["id"], "data": t["data"]} for t in tasks],
        "project": f"{int(project)}.{int(time.time())}",
    }


def webhook_event(manager, annotation_id: int, task: dict, project: int) -> dict:
    """The ``ANNOTATION_CREATED`` event Label Studio sends for an annotation (read as the
    manager): the annotation, its task and project."""
    answer = manager.request("GET", f"/api/annotations/{int(annotation_id)}/")
    answer.raise_for_status()
    return {
        "action": "ANNOTATION_CREATED",
        "annotation": answer.json(),
        "task": {"id": task["id"], "data": task["data"], "project": int(project)},
        "project": {"id": int(project)},
    }


def learning(backend_url: str) -> bool:
    """Whether the backend's learner has events queued or is refitting."""
    return bool(requests.get(f"{backend_url}/health", timeout=30).json()["learning"])


def held(store: Path) -> set[int]:
    """The annotation ids the backend's store holds (read-only, beside the running backend)."""
    if not store.exists():
        return set()
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        return {row[0] for row in db.execute("SELECT annotation_id FROM annotations")}


def wait_learned(
    backend_url: str, store: Path, annotations: set[int] = frozenset(), timeout: float = 600
) -> float:
    """Wait until the backend holds ``annotations`` and its learner is idle; seconds waited.

    Raises
    ------
    TimeoutError
        When that does not happen within ``timeout`` seconds.
    """
    started = time.perf_counter()
    while not (set(annotations) <= held(store) and not learning(backend_url)):
        if time.perf_counter() - started > timeout:
            missing = len(set(annotations) - held(store))
            raise TimeoutError(
                f"the backend at {backend_url} did not learn in {timeout:.0f} s "
                f"({missing} of {len(annotations)} annotations not held)"
            )
        time.sleep(0.05)
    return time.perf_counter() - started


def refits(log: Path) -> int:
    """How many refits the backend logged so far."""
    return log.read_text(encoding="utf-8", errors="replace").count("refitted ")


def percentile(values: list[float], q: int) -> float:
    """The ``q``-th percentile of ``values`` (at least two)."""
    return statistics.quantiles(values, n=100)[q - 1]
