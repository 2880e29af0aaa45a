"""The ML backend's service: predictions, the learner's events and the resync from Label Studio.

Framework-free: the web shell (:mod:`ls_backend.backend.app`) calls :meth:`Backend.predict`,
:meth:`Backend.setup` and :meth:`Backend.webhook` with parsed bodies. Nothing in a body is taken
on trust but ids: a task is read back from Label Studio within the project the body names, an
annotation by id, and a project's annotator is the one whose organization holds it
(:mod:`ls_backend.backend.label_studio`); only that annotator's own annotations are learnt.
Learning runs on the learner's thread (:mod:`ls_backend.backend.learner`); a prediction uses the
annotator's last fitted model and never waits for a fit. The proposals live in
:mod:`ls_backend.backend.annotator_model` and :mod:`ls_backend.backend.heat_proposal`, the memory
in :mod:`ls_backend.backend.store`.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import requests

from label_config import (
    DEFAULT_GROUPS,
    DISCARDED,
    PER_MAP_DISCARD,
    PER_MAP_DISCARD_CHOICE,
    PER_MAP_OVERLAY,
    UNSORTED,
    ExportError,
    group_name_region,
    ranker_region,
    read_controls,
    read_label_studio_export,
    taxonomy_region,
)
from label_config.tasks import BOARD, task_kind
from ls_backend.backend.annotator_model import (
    AnnotatorModel,
    cold_start,
    concept_of,
    fit_annotator_model,
    label_of,
)
from ls_backend.backend.heat_proposal import board_proposal, per_map_proposal
from ls_backend.backend.label_studio import (
    AnnotationRecord,
    LabelStudioReader,
    LabelStudioUnavailable,
    TaskRecord,
)
from ls_backend.backend.learner import Learner
from ls_backend.backend.naming import (
    MapInfo,
    Naming,
    features_of,
    maps_of_task,
    off_parts,
    part_columns,
    where_columns,
)
from ls_backend.backend.settings import BackendSettings
from ls_backend.backend.store import NamingStore
from ls_backend.backend.validation import BadRequest, project_id, require

__all__ = ["MODEL_VERSION", "Backend"]

MODEL_VERSION = "xnaming-annotator-7"
"""The one model_version string: in /setup's answer and in every prediction."""

log = logging.getLogger("xnaming.backend")
_LEARN_ACTIONS = {"ANNOTATION_CREATED", "ANNOTATION_UPDATED"}


class Backend:
    """Predictions and learning for every annotator.

    Parameters
    ----------
    settings
        The backend's settings.
    label_studio
        What the backend reads from Label Studio; by default a
        :class:`~ls_backend.backend.label_studio.LabelStudioReader` of ``settings`` (tests give
        one of their own).
    """

    def __init__(self, settings: BackendSettings, *, label_studio: Any = None) -> None:
        self.settings = settings
        self.store = NamingStore(Path(settings.state_dir) / "namings.sqlite3")
        self.label_studio = label_studio or LabelStudioReader(settings)
        # (annotator, embedding space) -> the model last fitted (None: no basis).
        self._models: dict[tuple[str, str], AnnotatorModel | None] = {}
        self._models_lock = threading.Lock()
        self._learner = Learner(self._apply, self._refit)
        self.start_resync()

    # -- predictions ---------------------------------------------------------------------

    def predict(self, body: Any) -> dict:
        """Label Studio's ``/predict``: one list of predictions per task of the body.

        A task Label Studio does not confirm (unknown id, or not in the project the request
        names) gets none.

        Raises
        ------
        BadRequest
            A body that is not as Label Studio sends it.
        LabelStudioUnavailable
            When Label Studio cannot be asked.
        """
        body = require(body, dict, "request body")
        tasks = require(body.get("tasks"), list, "'tasks'")
        config = body.get("label_config") or ""
        require(config, str, "'label_config'")
        try:
            groups = (read_controls(config).groups if config else 0) or DEFAULT_GROUPS
        except ValueError as error:
            raise BadRequest(f"'label_config': {error}") from None
        claims = []  # (task id, project) as the body names them
        for index, task in enumerate(tasks):
            task = require(task, dict, f"tasks[{index}]")
            data = require(task.get("data"), dict, f"tasks[{index}].data")
            where = f"tasks[{index}] (id {task.get('id')})"
            _maps(data, where)  # the body is checked as before, though only its ids are used
            claims.append(_claim(task, body.get("project"), where))
        confirmed = self._confirm(claims)
        results = []
        histories: dict[tuple[str, str | None], list[Naming]] = {}  # read once per call
        for claim in claims:
            known = confirmed.get(claim)
            if known is None:
                results.append([])  # not a task of that project, as Label Studio says
                continue
            try:
                maps = maps_of_task(known.data)
            except ValueError as error:  # the annotator may have edited it: theirs to fix
                log.warning("task %s as Label Studio holds it: %s", known.id, error)
                results.append([])
                continue
            results.append(self._predict_task(known, maps, groups, histories))
        return {"results": results, "model_version": MODEL_VERSION}

    def _confirm(self, claims: list[tuple[int, int] | None]) -> dict[tuple[int, int], TaskRecord]:
        """The claimed tasks Label Studio holds in the claimed project."""
        by_project: dict[int, list[int]] = {}
        for claim in claims:
            if claim is not None:
                by_project.setdefault(claim[1], []).append(claim[0])
        confirmed = {}
        for project, ids in by_project.items():
            for task_id, task in self.label_studio.tasks_of(project, ids).items():
                confirmed[(task_id, project)] = task
        return confirmed

    def _predict_task(
        self,
        task: TaskRecord,
        maps: list[MapInfo],
        groups: int,
        histories: dict[tuple[str, str | None], list[Naming]],
    ) -> list[dict]:
        board = task_kind(task.data) == BOARD
        space = _space_of(maps)
        if space is not None:
            return self._predict_with_model(board, maps, task.annotator, space, groups)
        # The older proposal, for tasks without embeddings. A board learns what this annotator
        # leaves unsorted from all their namings (it carries across categories); a per-map
        # proposal needs the same category's only.
        key = (task.annotator, None if board or not maps else maps[0].category)
        if key not in histories:
            histories[key] = self.store.namings_of(*key)
        if board:
            buckets, names = board_proposal(maps, histories[key], groups=groups)
            return [_board_result(buckets, names, len(maps), groups)]
        proposal = per_map_proposal(maps[0], histories[key])
        if proposal is None:
            return []  # no basis: no prediction, so Label Studio asks again next time
        concept, score = proposal
        return [_prediction(taxonomy_region(concept), score)]

    def model(self, annotator: str, space: str) -> AnnotatorModel | None:
        """This annotator's last fitted model in ``space`` (``None``: none yet, or no basis)."""
        return self._models.get((annotator, space))

    def _predict_with_model(
        self, board: bool, maps: list[MapInfo], annotator: str, space: str, groups: int
    ) -> list[dict]:
        model = self.model(annotator, space)
        features = features_of(maps)
        if model is not None and features.shape[1] != model.width:
            model = None  # the task's embeddings are not those the model knows
        ids = [m.activation_id for m in maps]
        if board:
            if model is not None:
                proposal = model.propose(ids, features, groups=groups)
            else:
                proposal = cold_start(
                    ids,
                    features,
                    [m.x_feature for m in maps],
                    [m.heat for m in maps],
                    groups=groups,
                    off_parts=off_parts(maps),
                )
            return [_board_result(proposal.buckets, proposal.names, len(maps), groups)]
        if model is None:
            return []  # no basis: no prediction, so Label Studio asks again next time
        probabilities = model.probabilities(features)[0]
        best = int(probabilities.argmax())
        label = model.classes[best]
        if concept_of(label) is not None:  # named: the namer says which concept
            naming = model.concept_probabilities(features)[0]
            which = int(naming.argmax())
            return [_prediction(taxonomy_region(model.concepts[which]), naming[which])]
        if label == DISCARDED:
            region = {
                "type": "choices",
                "from_name": PER_MAP_DISCARD,
                "to_name": PER_MAP_OVERLAY,
                "value": {"choices": [PER_MAP_DISCARD_CHOICE]},
            }
            return [_prediction(region, probabilities[best])]
        return []  # most likely left unnamed: nothing to propose

    def setup(self, body: Any) -> dict:
        body = require(body, dict, "request body")
        if "project" not in body:
            raise BadRequest("'project' is missing")
        self.store.remember_project(project_id(body["project"], "'project'"))
        require(body.get("schema", ""), str, "'schema'")
        return {"model_version": MODEL_VERSION}

    # -- learning ------------------------------------------------------------------------

    def webhook(self, body: Any) -> dict:
        """Check a webhook event's form and queue the ids it names for the learner.

        Raises
        ------
        BadRequest
            A body that is not as Label Studio sends it.
        QueueFull
            When the learner's queue is full.
        """
        body = require(body, dict, "request body")
        action = require(body.get("action"), str, "'action'")
        if action in _LEARN_ACTIONS:
            annotation = require(body.get("annotation"), dict, "'annotation'")
            ids = [require(annotation.get("id"), int, "'annotation.id'")]
            require(annotation.get("result", []), list, "'annotation.result'")
            task = require(body.get("task"), dict, "'task'")
            require(task.get("data"), dict, "'task.data'")
            project_id(annotation.get("project", body.get("project")), "'annotation.project'")
        elif action == "ANNOTATIONS_DELETED":
            items = require(body.get("annotations"), list, "'annotations'")
            ids = [
                require(require(item, dict, "annotations[]").get("id"), int, "annotations[].id")
                for item in items
            ]
        elif action == "START_TRAINING":
            project = project_id(body.get("project"), "'project'")
            self._learner.submit(("project", project), ("project", project))
            return {"status": "queued", "action": action}
        else:
            return {"status": "ignored", "action": action}
        # Created, updated or deleted: the learner asks Label Studio what the annotation is now.
        for annotation_id in ids:
            self._learner.submit(("annotation", annotation_id), ("annotation", annotation_id))
        return {"status": "queued", "action": action}

    @property
    def learning(self) -> bool:
        """Whether events are queued or being learned."""
        return self._learner.busy

    @property
    def fits(self) -> int:
        """How many refits the learner has made (for tests and benchmarks)."""
        return self._learner.fits

    def wait_idle(self, timeout: float = 30) -> bool:
        """Block until every queued event is learned (for tests and benchmarks)."""
        return self._learner.wait_idle(timeout)

    def start_resync(self) -> None:
        """Queue a resync of every known project and a fit of every annotator's model (done
        at start-up)."""
        self._learner.submit(("resync",), ("resync", None))

    def _apply(self, event: tuple[str, Any]) -> set[str]:
        """One learner event; returns the annotators whose namings it may have changed."""
        kind, value = event
        if kind == "annotation":
            return self._sync_annotation(value)
        if kind == "project":
            return self.resync([value])
        return self.resync()

    def _sync_annotation(self, annotation_id: int) -> set[str]:
        """Make the store hold what Label Studio holds for this annotation id."""
        annotation = self.label_studio.annotation(annotation_id)
        if annotation is None:  # deleted, or never made: forget it
            return self.store.delete_annotations([annotation_id])
        task = self.label_studio.task(annotation.task, annotation.project)
        if task is None:
            return set()
        if annotation.was_cancelled or annotation.completed_by != task.owner.id:
            # Skipped, or someone else's in this annotator's project (the manager trying the
            # board): not what this annotator does. Forget any older copy.
            return self.store.delete_annotations([annotation_id])
        who, namings = _annotation_rows(task, annotation)
        self.store.put_annotation(annotation.id, annotation.project, who, namings, task_id=task.id)
        # /predict sees the new namings once the learner has refitted; what Label Studio
        # already holds for the annotator's other tasks is older: drop it, so Label Studio asks
        # again when they open one.
        self.drop_stale_predictions(annotation.project)
        return {who}

    def drop_stale_predictions(self, project: int) -> None:
        """Delete this model's predictions of the project's tasks not yet annotated.

        Label Studio shows a task's stored prediction however much the backend learnt since
        (its Data Manager even predicts every task on the page the annotator sees), and asks
        the backend only for a task without one. Skipped while Label Studio cannot be asked.
        """
        annotated = self.store.annotated_tasks(project)
        try:
            organization = self.label_studio.organization(project)
            for prediction in self.label_studio.predictions(project):
                ours = prediction.get("model_version") == MODEL_VERSION
                if ours and prediction.get("task") not in annotated:
                    self.label_studio.delete_prediction(prediction["id"], organization=organization)
        except (LabelStudioUnavailable, requests.RequestException) as error:
            log.warning("could not drop stale predictions of project %s: %s", project, error)

    def resync(self, projects: list[int] | None = None) -> set[str]:
        """Rebuild the store's rows of ``projects`` (default: all known) from Label Studio.

        Returns the annotators to refit: those of the rebuilt projects, or everyone in the
        store for a full resync (so every model is fitted before the first ``/predict``).
        """
        touched = self.store.annotators() if projects is None else set()
        if not self.label_studio.configured:
            log.info("no Label Studio URL and token: resync skipped")
            return touched
        self.label_studio.wait_up()
        for project in self.store.projects() if projects is None else projects:
            touched |= self.store.annotators(project)
            try:
                touched |= self._resync_project(project)
            except Exception as error:  # a deleted project, Label Studio down, odd data
                log.warning("resync of project %s failed: %s", project, error)
        return touched

    def _resync_project(self, project: int) -> set[str]:
        owner = self.label_studio.owner(project)
        if owner is None:
            log.info("project %s is no annotator's: resync skipped", project)
            return set()
        rows, annotated = [], []
        for task in self.label_studio.export(project) or []:
            record = TaskRecord(int(task["id"]), project, task.get("data") or {}, owner)
            for raw in task.get("annotations", []):
                annotation = AnnotationRecord.from_json(
                    {**raw, "task": record.id, "project": project}
                )
                if annotation.was_cancelled or annotation.completed_by != owner.id:
                    continue
                who, namings = _annotation_rows(record, annotation)
                rows += [(annotation.id, project, who, n) for n in namings]
                annotated.append((annotation.id, record.id))
        self.store.replace_project(project, rows, annotated=annotated)
        log.info("resynced project %s: %d namings", project, len(rows))
        return {row[2] for row in rows}

    def _refit(self, annotator: str) -> None:
        """Fit ``annotator``'s model in each embedding space of their namings."""
        by_space: dict[str, list[Naming]] = {}
        namings = self.store.namings_of(annotator)
        for n in namings:
            if n.map.space is not None and n.map.embedding is not None:
                by_space.setdefault(n.map.space, []).append(n)
        models: dict[tuple[str, str], AnnotatorModel | None] = {}
        started = time.perf_counter()
        for space, earlier in by_space.items():
            latest = [earlier[-1].map]  # where its columns lie: one space, one layout
            try:
                models[(annotator, space)] = fit_annotator_model(
                    features_of([n.map for n in earlier]),
                    [label_of(n.status, n.concept) for n in earlier],
                    space=space,
                    where=where_columns(latest),
                    parts=part_columns(latest),
                    boards=[n.map.category for n in earlier],
                )
            except ValueError as error:  # embeddings of two widths under one space name
                log.warning("no model for %s in space %s: %s", annotator, space, error)
                models[(annotator, space)] = None
        with self._models_lock:  # swapped whole: a prediction sees the old or the new
            kept = {k: v for k, v in self._models.items() if k[0] != annotator}
            self._models = kept | models
        if models:
            took = time.perf_counter() - started
            log.info("refitted %s on %d namings in %.1f s", annotator, len(namings), took)


def _claim(task: dict, project: Any, where: str) -> tuple[int, int] | None:
    """(task id, project) as a ``/predict`` task names them; ``None`` when it names none."""
    task_id, project = task.get("id"), task.get("project", project)
    if not isinstance(task_id, int) or isinstance(task_id, bool) or project is None:
        return None
    return task_id, project_id(project, f"{where}: 'project'")


def _maps(data: dict, where: str) -> list[MapInfo]:
    try:
        return maps_of_task(data)
    except ValueError as error:
        raise BadRequest(f"{where}: {error}") from None


def _space_of(maps: list[MapInfo]) -> str | None:
    """The one embedding space of ``maps``; None when one lacks an embedding or they differ."""
    spaces = {m.space for m in maps}
    if len(spaces) != 1 or None in spaces or any(m.embedding is None for m in maps):
        return None
    return next(iter(spaces))


def _prediction(region: dict, score: float) -> dict:
    return {"result": [region], "score": round(float(score), 4), "model_version": MODEL_VERSION}


def _board_result(
    buckets: dict[str, list[str]], names: dict[int, str], n_maps: int, groups: int
) -> dict:
    """A board's proposal as a prediction; its score: half the share of maps it groups, half
    the share of the groups it names."""
    regions = [
        ranker_region(buckets),
        *(group_name_region(index, name) for index, name in sorted(names.items())),
    ]
    grouped = sum(len(v) for k, v in buckets.items() if k != UNSORTED)
    score = 0.5 * grouped / max(n_maps, 1) + 0.5 * len(names) / max(groups, 1)
    return {"result": regions, "score": round(score, 4), "model_version": MODEL_VERSION}


def _annotation_rows(task: TaskRecord, annotation: AnnotationRecord) -> tuple[str, list[Naming]]:
    """The namings one annotation gives, read with the analysis' own export reader."""
    export = [{"id": task.id, "data": task.data, "annotations": [annotation.as_export()]}]
    try:
        table = read_label_studio_export(export)
    except ExportError as error:
        raise BadRequest(f"project {task.project}: {error}") from None
    maps = {m.activation_id: m for m in maps_of_task(task.data)}
    namings = [
        Naming(maps[row.activation_id], row.concept, row.status)
        for row in table.itertuples()
        if row.activation_id in maps
    ]
    return task.annotator, namings
