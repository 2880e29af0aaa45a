"""Label Studio as the backend's reader sees it, in memory: for tests without a server.

It answers what :class:`ls_backend.backend.label_studio.LabelStudioReader` answers (annotations
by id, tasks by id within a project, exports), from the tasks and annotations a test puts in,
so a test says what Label Studio holds and then sends the backend events and requests.
"""

from __future__ import annotations

from ls_backend.backend.label_studio import AnnotationRecord, Owner, TaskRecord

SECRET = ("xnaming", "s3cret-for-unit-tests")
"""The basic-auth pair the unit tests' backends are made with."""

PROJECT = 3
"""The project a task is put in unless a test says otherwise."""


class FakeLabelStudio:
    """Tasks and annotations held in memory; ``calls`` counts the reads."""

    configured = True

    def __init__(self) -> None:
        self.tasks: dict[int, TaskRecord] = {}
        self.annotations: dict[int, AnnotationRecord] = {}
        self.owners: dict[int, Owner] = {}
        self.calls = 0

    # -- what a test puts in ---------------------------------------------------------------

    def add_task(self, task: dict, project: int = PROJECT) -> dict:
        """Hold ``task`` (``{"id", "data"}``) in ``project``; returns it. A new project is the
        annotator's the task data names (as publish makes it), user id ``annotator_id`` (else
        one of their own)."""
        data = task["data"]
        if project not in self.owners:
            email = str(data.get("annotator", ""))
            known = {o.email: o.id for o in self.owners.values()}
            user = data.get("annotator_id", known.get(email, 100 + len(self.owners)))
            self.owners[project] = Owner(email, user)
        self.tasks[task["id"]] = TaskRecord(task["id"], project, data, self.owners[project])
        return task

    def annotate(
        self,
        annotation_id: int,
        task: dict,
        result: list,
        *,
        project: int | None = None,
        completed_by: int | None = None,
        was_cancelled: bool = False,
    ) -> None:
        """Hold an annotation of ``task`` (added when not held yet), by the project's
        annotator unless ``completed_by`` says who."""
        if task["id"] not in self.tasks:
            self.add_task(task, PROJECT if project is None else project)
        held = self.tasks[task["id"]]
        author = held.owner.id if completed_by is None else completed_by
        self.annotations[annotation_id] = AnnotationRecord(
            annotation_id, held.id, held.project, author, result, was_cancelled
        )

    def delete(self, annotation_id: int) -> None:
        self.annotations.pop(annotation_id, None)

    # -- the reader's calls ----------------------------------------------------------------

    def annotation(self, annotation_id: int) -> AnnotationRecord | None:
        self.calls += 1
        return self.annotations.get(annotation_id)

    def task(self, task_id: int, project: int) -> TaskRecord | None:
        return self.tasks_of(project, [task_id]).get(task_id)

    def tasks_of(self, project: int, ids: list[int]) -> dict[int, TaskRecord]:
        self.calls += 1
        held = (self.tasks.get(i) for i in ids)
        return {t.id: t for t in held if t is not None and t.project == project}

    def export(self, project: int, *, ids: list[int] | None = None) -> list[dict]:
        self.calls += 1
        found = []
        for task in self.tasks.values():
            if task.project != project or (ids is not None and task.id not in ids):
                continue
            annotations = [a.as_export() for a in self.annotations.values() if a.task == task.id]
            if annotations or ids is not None:
                found.append({"id": task.id, "data": task.data, "annotations": annotations})
        return found

    def owner(self, project: int) -> Owner | None:
        return self.owners.get(project)

    def organization(self, project: int) -> int | None:
        return None

    def predictions(self, project: int) -> list[dict]:
        return []

    def delete_prediction(self, prediction: int, *, organization: int | None) -> None:
        pass

    def wait_up(self, timeout: float = 0) -> bool:
        return True
