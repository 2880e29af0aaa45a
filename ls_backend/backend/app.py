"""The ML backend's web shell: label-studio-ml's app with validated views.

label-studio-ml 1.0.9 provides the Flask app (``init_app``) and the model base class, but its
views fail without a prior ``/setup``, spawn a process per webhook and return tracebacks. Here
the shell keeps its routes and replaces the views of ``/predict``, ``/setup``, ``/webhook``,
``/health`` and ``/versions`` with ones that validate input (400 with a JSON message), answer
at once, and hand learning to :class:`Backend`'s single background thread. The naming logic
lives in :mod:`ls_backend.backend.naming`; the memory in :mod:`ls_backend.backend.store`; the
bounds on a request
(body size, maps per board and per request, finite numbers) in :mod:`ls_backend.backend.validation`.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from ls_backend.backend.annotator_model import (
    AnnotatorModel,
    Proposal,
    cold_start,
    concept_of,
    fit_annotator_model,
    label_of,
)
from ls_backend.backend.naming import (
    MapInfo,
    Naming,
    board_prediction,
    features_of,
    maps_of_task,
    off_parts,
    part_columns,
    per_map_proposal,
    where_columns,
)
from ls_backend.backend.store import NamingStore
from ls_backend.backend.validation import (
    MAX_REQUEST_BYTES,
    BadRequest,
    TooLarge,
    check_body_size,
    check_predict_bounds,
    check_webhook_bounds,
    parse_body,
)

__all__ = ["MODEL_VERSION", "Backend", "BackendSettings", "BadRequest", "create_app"]

MODEL_VERSION = "xnaming-annotator-7"
"""The one model_version string: in /setup's answer and in every prediction."""

log = logging.getLogger("xnaming.backend")
_LEARN_ACTIONS = {"ANNOTATION_CREATED", "ANNOTATION_UPDATED"}


@dataclass(frozen=True)
class BackendSettings:
    """Everything the backend is configured with, built once at start-up.

    Parameters
    ----------
    state_dir
        Where the SQLite store lives.
    credentials
        ``credentials.json`` of ``xnaming ls start`` (read when resyncing, for the Label Studio
        URL and token), or ``None``.
    label_studio_url, api_key
        Label Studio to resync from, when no credentials file is given.
    basic_auth
        ``(user, password)`` required on every request, or ``None``.
    """

    state_dir: Path
    credentials: Path | None = None
    label_studio_url: str = ""
    api_key: str = ""
    basic_auth: tuple[str, str] | None = None


def _require(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool):
        expected = (
            kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        )
        raise BadRequest(f"{what} must be {expected}, got {type(value).__name__}")
    return value


def _project_id(value: Any, what: str) -> int:
    """Label Studio sends project ids as ``1``, ``"1"``, ``"1.1700000000"`` or ``{"id": 1}``."""
    if isinstance(value, dict):
        value = value.get("id")
    try:
        return int(str(value).split(".")[0])
    except (TypeError, ValueError):
        raise BadRequest(f"{what} must be a Label Studio project id, got {value!r}") from None


class Backend:
    """Predictions and learning; framework-free apart from being called by the views."""

    def __init__(self, settings: BackendSettings) -> None:
        self.settings = settings
        self.store = NamingStore(Path(settings.state_dir) / "namings.sqlite3")
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._idle = threading.Event()
        self._idle.set()
        # (annotator, embedding space) -> (store version it was fitted at, model or None).
        self._models: dict[tuple[str, str], tuple[tuple[int, int], AnnotatorModel | None]] = {}
        self._fitting = threading.Lock()
        self._manager = None  # ls_backend.manager.client.Manager, made on first use
        self._worker = threading.Thread(target=self._learn_forever, name="learner", daemon=True)
        self._worker.start()

    # -- predictions ---------------------------------------------------------------------

    def predict(self, body: Any) -> dict:
        body = _require(body, dict, "request body")
        tasks = _require(body.get("tasks"), list, "'tasks'")
        config = body.get("label_config") or ""
        _require(config, str, "'label_config'")
        try:
            groups = (read_controls(config).groups if config else 0) or DEFAULT_GROUPS
        except ValueError as error:
            raise BadRequest(f"'label_config': {error}") from None
        results = []
        histories: dict[tuple[str, str | None], list[Naming]] = {}  # read once per call
        for index, task in enumerate(tasks):
            task = _require(task, dict, f"tasks[{index}]")
            data = _require(task.get("data"), dict, f"tasks[{index}].data")
            try:
                maps = maps_of_task(data)
            except ValueError as error:
                raise BadRequest(f"tasks[{index}] (id {task.get('id')}): {error}") from None
            annotator = str(data.get("annotator", ""))
            space = _space_of(maps)
            if space is not None:
                results.append(self._predict_with_model(data, maps, annotator, space, groups))
                continue
            # The older proposal, for tasks without embeddings. A board learns what this
            # annotator leaves unsorted from all their namings (it carries across
            # categories); a per-map proposal needs the same category's only.
            scope = None if "activations" in data or not maps else maps[0].category
            key = (annotator, scope)
            if key not in histories:
                histories[key] = self.store.namings_of(*key)
            earlier = histories[key]
            results.append(self._predict_task(data, maps, earlier, groups))
        return {"results": results, "model_version": MODEL_VERSION}

    def model(self, annotator: str, space: str) -> AnnotatorModel | None:
        """This annotator's model in ``space``, refitted when their namings changed."""
        key = (annotator, space)
        cached = self._models.get(key)
        if cached is not None and cached[0] == self.store.version(annotator):
            return cached[1]
        with self._fitting:  # one fit at a time; a second caller finds it done
            version = self.store.version(annotator)
            cached = self._models.get(key)
            if cached is not None and cached[0] == version:
                return cached[1]
            earlier = [
                n
                for n in self.store.namings_of(annotator)
                if n.map.space == space and n.map.embedding is not None
            ]
            model = None
            if earlier:
                latest = [earlier[-1].map]  # where its columns lie: one space, one layout
                try:
                    model = fit_annotator_model(
                        features_of([n.map for n in earlier]),
                        [label_of(n.status, n.concept) for n in earlier],
                        space=space,
                        where=where_columns(latest),
                        parts=part_columns(latest),
                        boards=[n.map.category for n in earlier],
                    )
                except ValueError as error:  # embeddings of two widths under one space name
                    log.warning("no model for %s in space %s: %s", annotator, space, error)
            self._models[key] = (version, model)
            return model

    def _predict_with_model(
        self, data: dict, maps: list[MapInfo], annotator: str, space: str, groups: int
    ) -> list[dict]:
        model = self.model(annotator, space)
        if model is not None and features_of(maps[:1]).shape[1] != model.width:
            model = None  # the task's embeddings are not those the model knows
        board = "activations" in data
        ids = [m.activation_id for m in maps]
        if model is None:
            if not board:
                return []  # no basis: no prediction, so Label Studio asks again next time
            embeddings = features_of(maps)
            heats = [m.heat for m in maps]
            proposal = cold_start(
                ids,
                embeddings,
                [m.x_feature for m in maps],
                heats,
                groups=groups,
                off_parts=off_parts(maps),
            )
            return [_board_result(proposal, len(maps), groups)]
        features = features_of(maps)
        if board:
            return [_board_result(model.propose(ids, features, groups=groups), len(maps), groups)]
        probabilities = model.probabilities(features)
        naming = model.concept_probabilities(features)
        best = int(probabilities[0].argmax())
        label = model.classes[best]
        if concept_of(label) is not None:  # named: the namer says which concept
            which = int(naming[0].argmax())
            region = taxonomy_region(model.concepts[which])
            score = round(float(naming[0][which]), 4)
        elif label == DISCARDED:
            score = round(float(probabilities[0][best]), 4)
            region = {
                "type": "choices",
                "from_name": PER_MAP_DISCARD,
                "to_name": PER_MAP_OVERLAY,
                "value": {"choices": [PER_MAP_DISCARD_CHOICE]},
            }
        else:
            return []  # most likely left unnamed: nothing to propose
        return [{"result": [region], "score": score, "model_version": MODEL_VERSION}]

    def _predict_task(
        self, data: dict, maps: list[MapInfo], earlier: list[Naming], groups: int
    ) -> list[dict]:
        if "activations" in data:
            result = board_prediction(maps, earlier, groups=groups)
            named = sum(1 for r in result if r["type"] == "textarea")
            buckets = result[0]["value"]["ranker"]
            grouped = sum(len(v) for k, v in buckets.items() if k != UNSORTED)
            score = 0.5 * grouped / max(len(maps), 1) + 0.5 * named / max(groups, 1)
            return [{"result": result, "score": round(score, 4), "model_version": MODEL_VERSION}]
        proposal = per_map_proposal(maps[0], earlier)
        if proposal is None:
            return []  # no basis: no prediction, so Label Studio asks again next time
        concept, score = proposal
        region = taxonomy_region(concept)
        return [{"result": [region], "score": round(score, 4), "model_version": MODEL_VERSION}]

    def setup(self, body: Any) -> dict:
        body = _require(body, dict, "request body")
        if "project" not in body:
            raise BadRequest("'project' is missing")
        self.store.remember_project(_project_id(body["project"], "'project'"))
        _require(body.get("schema", ""), str, "'schema'")
        return {"model_version": MODEL_VERSION}

    # -- learning ------------------------------------------------------------------------

    def webhook(self, body: Any) -> dict:
        """Validate a webhook event and queue it; the learner thread applies it."""
        body = _require(body, dict, "request body")
        action = _require(body.get("action"), str, "'action'")
        if action in _LEARN_ACTIONS:
            annotation = _require(body.get("annotation"), dict, "'annotation'")
            _require(annotation.get("id"), int, "'annotation.id'")
            _require(annotation.get("result", []), list, "'annotation.result'")
            task = _require(body.get("task"), dict, "'task'")
            _require(task.get("data"), dict, "'task.data'")
            _project_id(annotation.get("project", body.get("project")), "'annotation.project'")
        elif action == "ANNOTATIONS_DELETED":
            for item in _require(body.get("annotations"), list, "'annotations'"):
                _require(_require(item, dict, "annotations[]").get("id"), int, "annotations[].id")
        elif action == "START_TRAINING":
            _project_id(body.get("project"), "'project'")
        else:
            return {"status": "ignored", "action": action}
        self._idle.clear()
        self._events.put((action, body))
        return {"status": "queued", "action": action}

    @property
    def learning(self) -> bool:
        """Whether events are queued or being learned."""
        return not self._idle.is_set()

    def wait_idle(self, timeout: float = 30) -> bool:
        """Block until every queued event is learned (for tests and benchmarks)."""
        return self._idle.wait(timeout)

    def _learn_forever(self) -> None:
        while True:
            action, body = self._events.get()
            try:
                self._learn(action, body)
            except Exception:  # one bad event must not stop learning
                log.exception("could not learn from %s", action)
            finally:
                if self._events.empty():
                    self._idle.set()

    def _learn(self, action: str, body: dict) -> None:
        if action in _LEARN_ACTIONS:
            annotation, task = body["annotation"], body["task"]
            project = _project_id(annotation.get("project", body.get("project")), "project")
            if annotation.get("was_cancelled"):
                self.store.delete_annotations([annotation["id"]])
                return
            if not _by_the_annotator(task["data"], annotation):
                # Someone else's annotation in this annotator's project (the manager
                # trying the board): not what this annotator does. Forget any older copy.
                self.store.delete_annotations([annotation["id"]])
                return
            who, namings = _annotation_rows(project, task, annotation)
            self.store.put_annotation(
                annotation["id"], project, who, namings, task_id=_task_id(task, annotation)
            )
            # From now on /predict sees the new namings (it refits when stale); what Label
            # Studio already holds for the annotator's other tasks is older: drop it, so
            # Label Studio asks again when they open one.
            self.drop_stale_predictions(project, _organization(body))
            space = _space_of([n.map for n in namings])
            if space is not None:
                self.model(who, space)  # refit now, so the next /predict finds it ready
        elif action == "ANNOTATIONS_DELETED":
            self.store.delete_annotations(a["id"] for a in body["annotations"])
        elif action == "START_TRAINING":
            self.resync([_project_id(body["project"], "project")])
        elif action == "RESYNC":
            self.resync()

    def _label_studio(self) -> tuple[str, str]:
        """Label Studio's URL and the manager's token, or empty strings."""
        url, key = self.settings.label_studio_url, self.settings.api_key
        if self.settings.credentials and self.settings.credentials.exists():
            stored = json.loads(self.settings.credentials.read_text(encoding="utf-8"))
            url, key = url or stored.get("url", ""), key or stored.get("token", "")
        return url, key

    def drop_stale_predictions(self, project: int, organization: int | None) -> None:
        """Delete this model's predictions of the project's tasks not yet annotated.

        Label Studio shows a task's stored prediction however much the backend learnt since
        (its Data Manager even predicts every task on the page the annotator sees), and asks
        the backend only for a task without one. Skipped without Label Studio credentials.
        """
        url, key = self._label_studio()
        if not (url and key):
            return
        from ls_backend.manager.client import Manager

        if self._manager is None or self._manager.url != url.rstrip("/"):
            self._manager = Manager(url, key, timeout=30)
        annotated = self.store.annotated_tasks(project)
        try:
            path = f"/api/predictions/?project={project}"
            answer = self._manager.request("GET", path, organization=organization)
            answer.raise_for_status()
            stale = [
                p["id"]
                for p in answer.json()
                if p.get("model_version") == MODEL_VERSION and p.get("task") not in annotated
            ]
            for prediction in stale:
                self._manager.request(
                    "DELETE", f"/api/predictions/{prediction}/", organization=organization
                )
        except Exception as error:  # Label Studio down: the next annotation tries again
            log.warning("could not drop stale predictions of project %s: %s", project, error)

    def resync(self, projects: list[int] | None = None) -> None:
        """Rebuild the store's rows of ``projects`` (default: all known) from Label Studio."""
        url, key = self._label_studio()
        if not (url and key):
            log.info("no Label Studio URL and token: resync skipped")
            return
        import requests
        from label_studio_sdk import LabelStudio  # heavy; only needed here

        # Started together with Label Studio, the backend may be up first: wait for it.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(1)
        client = LabelStudio(base_url=url, api_key=key)
        for project in self.store.projects() if projects is None else projects:
            try:
                chunks = client.projects.exports.download_sync(project, export_type="JSON")
                tasks = json.loads(b"".join(chunks))
            except Exception as error:  # a deleted project or Label Studio down
                log.warning("resync of project %s failed: %s", project, error)
                continue
            rows, annotated = [], []
            for task in tasks:
                for annotation in task.get("annotations", []):
                    if annotation.get("was_cancelled") or not _by_the_annotator(
                        task.get("data") or {}, annotation
                    ):
                        continue
                    who, namings = _annotation_rows(project, task, annotation)
                    rows += [(annotation["id"], project, who, n) for n in namings]
                    annotated.append((annotation["id"], _task_id(task, annotation)))
            self.store.replace_project(project, rows, annotated=annotated)
            log.info("resynced project %s: %d namings", project, len(rows))
            for who in sorted({row[2] for row in rows}):
                spaces = {row[3].map.space for row in rows if row[2] == who}
                for space in sorted(s for s in spaces if s is not None):
                    self.model(who, space)  # fitted now, not on the first /predict

    def start_resync(self) -> None:
        """Queue a resync of every known project behind any pending events."""
        self._idle.clear()
        self._events.put(("RESYNC", {}))


def _space_of(maps: list[MapInfo]) -> str | None:
    """The one embedding space of ``maps``; None when one lacks an embedding or they differ."""
    spaces = {m.space for m in maps}
    if len(spaces) != 1 or None in spaces or any(m.embedding is None for m in maps):
        return None
    return next(iter(spaces))


def _board_result(proposal: Proposal, n_maps: int, groups: int) -> dict:
    regions = [
        ranker_region(proposal.buckets),
        *(group_name_region(index, name) for index, name in sorted(proposal.names.items())),
    ]
    grouped = sum(len(v) for k, v in proposal.buckets.items() if k != UNSORTED)
    score = 0.5 * grouped / max(n_maps, 1) + 0.5 * len(proposal.names) / max(groups, 1)
    return {"result": regions, "score": round(score, 4), "model_version": MODEL_VERSION}


def _task_id(task: dict, annotation: dict) -> int | None:
    value = task.get("id", annotation.get("task"))
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _organization(body: dict) -> int | None:
    """The organization of a webhook's project (Label Studio sends the project's fields)."""
    project = body.get("project")
    value = project.get("organization") if isinstance(project, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _by_the_annotator(data: dict, annotation: dict) -> bool:
    """Whether the project's own annotator made ``annotation``.

    publish writes the annotator's user id into the task data (``annotator_id``); tasks of an
    older publish lack it, and then every annotation counts, as before.
    """
    expected = data.get("annotator_id")
    if expected is None:
        return True
    author = annotation.get("completed_by")
    if isinstance(author, dict):  # some payloads nest the user
        author = author.get("id")
    return isinstance(author, int) and not isinstance(author, bool) and author == expected


def _annotation_rows(project: int, task: dict, annotation: dict) -> tuple[str, list[Naming]]:
    """The namings one annotation gives, read with the analysis' own export reader."""
    data = task["data"]
    export = [{"id": task.get("id"), "data": data, "annotations": [annotation]}]
    try:
        table = read_label_studio_export(export)
    except ExportError as error:
        raise BadRequest(f"project {project}: {error}") from None
    maps = {m.activation_id: m for m in maps_of_task(data)}
    namings = [
        Naming(maps[row.activation_id], row.concept, row.status)
        for row in table.itertuples()
        if row.activation_id in maps
    ]
    return str(data.get("annotator", "")), namings


def _check_basic_auth(header: str | None, expected: tuple[str, str]) -> bool:
    if not header or not header.startswith("Basic "):
        return False
    try:
        user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    # Constant-time comparisons of both parts (no early exit on the user name).
    ok_user = hmac.compare_digest(user.encode(), expected[0].encode())
    ok_password = hmac.compare_digest(password.encode(), expected[1].encode())
    return ok_user and ok_password


def create_app(settings: BackendSettings):  # -> flask.Flask
    """The backend's Flask app, built on label-studio-ml's ``init_app`` shell.

    Parameters
    ----------
    settings
        The backend's settings.

    Returns
    -------
    flask.Flask
        The WSGI app; ``app.config["XNAMING_BACKEND"]`` is its :class:`Backend`.
    """
    from flask import jsonify, request
    from label_studio_ml.api import init_app, log_request_info
    from label_studio_ml.model import LabelStudioMLBase

    backend = Backend(settings)

    class NamingModel(LabelStudioMLBase):
        """label-studio-ml's model slot, delegating to :class:`Backend`."""

        def predict(self, tasks, **kwargs):
            return backend.predict({"tasks": tasks})["results"]

    app = init_app(NamingModel)
    app.config["XNAMING_BACKEND"] = backend
    app.config["JSON_SORT_KEYS"] = False
    # Werkzeug 2.0 applies this to form parsing only: json_body enforces it for JSON.
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES

    def json_body() -> Any:
        """The strict JSON body, refused unread when it is too big (see validation)."""
        check_body_size(request.content_length)
        raw = request.stream.read(MAX_REQUEST_BYTES + 1)  # a chunked body has no length
        check_body_size(len(raw))
        return parse_body(raw)

    def predict_view():
        body = json_body()
        check_predict_bounds(body)
        return jsonify(backend.predict(body))

    def setup_view():
        return jsonify(backend.setup(json_body()))

    def webhook_view():
        body = json_body()
        check_webhook_bounds(body)
        return jsonify(backend.webhook(body)), 200

    def health_view():
        # "learning": events queued or being learned (benchmarks wait for it to clear).
        return jsonify(
            {"status": "UP", "model_version": MODEL_VERSION, "learning": backend.learning}
        )

    def versions_view():
        return jsonify({"versions": [MODEL_VERSION], "model_version": MODEL_VERSION})

    views = {
        "_predict": predict_view,
        "_setup": setup_view,
        "webhook": webhook_view,
        "health": health_view,
        "get_version": versions_view,
    }
    app.view_functions.update(views)
    if "xnaming_versions" not in app.view_functions:
        app.add_url_rule("/versions", "xnaming_versions", methods=["GET"])
    app.view_functions["xnaming_versions"] = versions_view

    if not app.config.get("XNAMING_HOOKS"):
        # The shell's app is a module global: register hooks once, reading the current backend.
        app.config["XNAMING_HOOKS"] = True
        # The shell logs every body through request.get_data(), which reads a body of any
        # size before json_body can refuse it unread.
        shell_hooks = app.before_request_funcs.get(None, [])
        if log_request_info in shell_hooks:
            shell_hooks.remove(log_request_info)

        @app.before_request
        def require_auth():
            current: Backend = app.config["XNAMING_BACKEND"]
            expected = current.settings.basic_auth
            if expected and not _check_basic_auth(request.headers.get("Authorization"), expected):
                answer = jsonify({"error": "authentication required"})
                answer.headers["WWW-Authenticate"] = 'Basic realm="xnaming backend"'
                return answer, 401
            return None

        @app.errorhandler(BadRequest)
        def bad_request(error):
            return jsonify({"error": str(error)}), 400

        @app.errorhandler(TooLarge)
        def too_large(error):
            return jsonify({"error": str(error)}), 413

        @app.errorhandler(413)
        def body_too_large(error):  # werkzeug's own, should any parser raise it
            return jsonify({"error": f"request body over {MAX_REQUEST_BYTES} bytes"}), 413

        @app.errorhandler(404)
        def not_found(error):
            return jsonify({"error": f"no such endpoint: {request.path}"}), 404

        @app.errorhandler(405)
        def not_allowed(error):
            return jsonify({"error": f"{request.method} not allowed on {request.path}"}), 405

        @app.errorhandler(Exception)
        def internal(error):
            log.exception("internal error on %s", request.path)
            return jsonify({"error": f"internal error ({type(error).__name__}); see the log"}), 500

    backend.start_resync()
    return app
