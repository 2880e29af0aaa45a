"""``xnaming publish``: a map bundle -> one Label Studio project per annotator.

For each annotator: their account in an organization of their own, with the manager in it too
(``ls_backend.isolation``, through :class:`ls_backend.manager.client.Manager`: no annotator sees
another's
work), their project in it (found again by title on a second run), a local files storage so
the annotator's browser can load the images from Label Studio itself, the tasks that are not
there yet (task data per ``docs/formats.md``, with each map's embedding when the bundle has
them), the ML backend and its webhook, and Label Studio set to ask the backend for a prediction
when a task is opened (never at publish time: the proposal must reflect what the annotator did
before opening it). Re-running adds only what is missing and never touches annotations.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from label_config import DEFAULT_GROUPS, MODES, board_config, per_map_config
from label_config.tasks import (
    EMBEDDING_SPACE,
    EMBEDDING_WHERE,
    board_task,
    encode_embedding,
    map_fields,
    owner_fields,
    per_map_task,
    task_key,
)
from ls_backend.manager.checks import check_bundle_files, check_under_files_root
from ls_backend.manager.client import explain_refusal
from ls_backend.manager.projects import ProjectBook, ProjectRecord
from xnn_training.bundle.embeddings import check_embeddings, read_embeddings
from xnn_training.bundle.io import Bundle, bundle_geometry, read_bundle
from xnn_training.maps.hot_spot import MAP_GEOMETRY

__all__ = [
    "MODES",
    "PublishedProject",
    "load_bundle",
    "parse_project_title",
    "project_title",
    "publish",
]

PROJECT_MARKER = "xnaming"


@dataclass
class PublishedProject:
    """What publish did for one annotator."""

    annotator: str
    project_id: int
    title: str
    tasks_added: int
    tasks_total: int
    account_created: bool
    password: str | None = None
    notes: list[str] = field(default_factory=list)


def project_title(annotator: str, mode: str) -> str:
    """The title that identifies an annotator's project (publish finds it again by it)."""
    return f"{PROJECT_MARKER} {mode}: {annotator}"


def parse_project_title(title: str) -> tuple[str, str] | None:
    """``(mode, annotator)`` of a title made by :func:`project_title`, else None."""
    for mode in MODES:
        prefix = project_title("", mode)
        if title.startswith(prefix) and "@" in title[len(prefix) :]:
            return mode, title[len(prefix) :]
    return None


def load_bundle(
    bundle: str | Path,
    *,
    categories: Sequence[str] | None = None,
    warn: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """The bundle's ``activations.csv`` with what the backend knows of each map.

    The bundle is read (and checked) by :func:`xnn_training.bundle.io.read_bundle`. Its maps'
    geometry (``heat_x``, ``heat_y``: the centre of the map's positive heat; how large, spread
    and peaked its hot spot is) is the bundle's (:func:`xnn_training.bundle.io.bundle_geometry`:
    measured from the raw maps, once and with one line through ``warn``, for a bundle made
    before explain wrote it).

    Raises
    ------
    xnn_training.bundle.io.BundleError
        ``bundle`` is not a finished map bundle (the message says what is missing), or a file
        differs from the manifest's sha256 or lies outside the bundle.
    ValueError
        Unknown categories, or a raw map that cannot be read.
    """
    bundle = Path(bundle)
    read = read_bundle(bundle)
    check_bundle_files(read)  # before any map is opened
    geometry = bundle_geometry(read, warn=warn)
    table = read.activations.drop(columns=list(MAP_GEOMETRY), errors="ignore").join(geometry)
    embeddings = read_embeddings(read)  # publish has warned when there are none
    if embeddings is not None:
        table = table.assign(
            embedding=[encode_embedding(row) for row in embeddings.values],
            embedding_space=embedding_space(read),
            embedding_where=embeddings.where,
        )
    if categories:
        unknown = sorted(set(categories) - set(table["category"]))
        if unknown:
            raise ValueError(
                f"categories not in {bundle}: {unknown}; "
                f"known: {sorted(table['category'].unique())[:20]}"
            )
        table = table[table["category"].isin(categories)]
    return table.reset_index(drop=True)


def embedding_space(bundle: Bundle) -> str:
    """Which embeddings a bundle's are: a short hash of its network (the dnn run's sha256) and
    its manifest's ``embeddings`` entry (layers, pooling, geometry). Maps of two bundles of one
    network compare; the backend learns an annotator only from maps of one space."""
    identity = {
        "dnn_run": (bundle.manifest.get("dnn_run") or {}).get("sha256"),
        "embeddings": bundle.manifest.get("embeddings"),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def _file_url(path: Path, files_root: Path) -> str:
    try:
        relative = path.resolve().relative_to(files_root)
    except ValueError:
        raise ValueError(
            f"{path} is not under Label Studio's files root {files_root}: move the bundle there "
            "or start Label Studio with `xnaming ls start --files-root DIR` above the bundle"
        ) from None
    return "/data/local-files/?d=" + quote(relative.as_posix())


def _owner_fields(table: pd.DataFrame, annotator: str, annotator_id: int | None) -> dict:
    space = where = None
    if EMBEDDING_SPACE in table.columns and len(table):
        space, where = table[EMBEDDING_SPACE].iloc[0], table[EMBEDDING_WHERE].iloc[0]
    return owner_fields(annotator, annotator_id, space=space, where=where)


def _thumbnail(row, bundle: Path, files_root: Path) -> str:
    """The HTML of a map's thumbnail on a board: its overlay, its image and X-feature on hover."""
    url = _file_url(bundle / row.overlay_path, files_root)
    hover = escape(f"{row.image_id} (X-feature {row.x_feature})", quote=True)
    return f"<img src='{url}' title='{hover}' alt='{hover}'>"


def board_tasks(
    table: pd.DataFrame,
    bundle: Path,
    *,
    files_root: Path,
    annotator: str,
    annotator_id: int | None = None,
) -> list[dict]:
    """One board task per category (:func:`label_config.tasks.board_task`)."""
    owner = _owner_fields(table, annotator, annotator_id)
    tasks = []
    for category, rows in table.groupby("category", sort=True):
        rows = rows.sort_values(["image_id", "x_feature"])
        maps = [map_fields(row._asdict()) for row in rows.itertuples()]
        thumbnails = [_thumbnail(row, bundle, files_root) for row in rows.itertuples()]
        tasks.append({"data": board_task(str(category), maps, thumbnails, owner=owner)})
    return tasks


def per_map_tasks(
    table: pd.DataFrame,
    bundle: Path,
    *,
    files_root: Path,
    annotator: str,
    annotator_id: int | None = None,
) -> list[dict]:
    """One task per activation (:func:`label_config.tasks.per_map_task`)."""
    owner = _owner_fields(table, annotator, annotator_id)
    rows = table.sort_values(["category", "image_id", "x_feature"]).itertuples()
    return [
        {
            "data": per_map_task(
                map_fields(row._asdict()),
                category=row.category,
                overlay=_file_url(bundle / row.overlay_path, files_root),
                image=_file_url(bundle / row.image_path, files_root),
                owner=owner,
            )
        }
        for row in rows
    ]


def _existing_task_keys(client, project_id: int) -> set[str]:
    chunks = client.projects.exports.download_sync(
        project_id, export_type="JSON", download_all_tasks=True
    )
    return {task_key(task["data"]) for task in json.loads(b"".join(chunks))}


def publish(
    bundle: str | Path,
    annotators: Sequence[str],
    *,
    url: str,
    token: str,
    files_root: str | Path,
    mode: str = MODES[0],
    categories: Sequence[str] | None = None,
    backend_url: str = "",
    backend_auth: tuple[str, str] | None = None,
    groups: int = DEFAULT_GROUPS,
    passwords: dict[str, str] | None = None,
    book: ProjectBook | None = None,
    progress: Callable[[str], None] = print,
) -> list[PublishedProject]:
    """Publish ``bundle`` to Label Studio, one project per annotator; idempotent.

    Everything that can be checked here is checked before Label Studio is asked anything
    (:mod:`ls_backend.manager.checks`); then, per annotator: their account, their project, its
    tasks, the ML backend.

    Parameters
    ----------
    bundle
        The map bundle directory (``docs/formats.md``); must lie under ``files_root``.
    annotators
        The annotators' e-mail addresses.
    url, token
        Label Studio and a personal access token of its owner.
    files_root
        ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT`` of that server.
    mode
        ``"board"`` (one task per category) or ``"per-map"`` (one task per activation).
    categories
        Only these categories (default: all).
    backend_url
        The ML backend to connect (empty: none).
    backend_auth
        ``(user, password)`` of the backend's basic auth, given to Label Studio's connection.
    groups
        Group count of the board config.
    passwords
        Known annotator passwords; new accounts' passwords are added to it.
    book
        The manager's record (:class:`ls_backend.manager.projects.ProjectBook`): each project is
        found again by its id there and recorded, each new password stored as soon as the
        account exists. Default: a record in memory only.
    progress
        Called with one line per step.

    Returns
    -------
    list of PublishedProject

    Raises
    ------
    ValueError
        Bad arguments, or a bundle that fails a check (before anything changed).
    label_studio_sdk.core.api_error.ApiError
        Label Studio refused a step; the message names the step and the refused field.
    """
    from ls_backend.manager.client import Manager

    emails = _check_annotators(annotators, mode)
    bundle, files_root = Path(bundle).resolve(), Path(files_root).resolve()
    table = _checked_table(bundle, files_root, categories=categories, warn=progress)
    config = board_config(groups=groups) if mode == "board" else per_map_config()
    manager = Manager(url, token)
    manager.annotators()  # fails clearly on a server without the isolation
    book = book if book is not None else ProjectBook(None)
    passwords = passwords if passwords is not None else {}
    published = []
    for email in emails:
        annotator, notes = _account(manager, book, email, mode, passwords)
        client = manager.client(annotator.organization)
        project_id, title, created = _project(
            manager, client, book, annotator, mode=mode, bundle=bundle, config=config
        )
        notes += ["project created"] if created else []
        make = board_tasks if mode == "board" else per_map_tasks
        # The annotator's user id goes into the task data: the backend learns from their
        # own annotations only.
        tasks = make(
            table, bundle, files_root=files_root, annotator=email, annotator_id=annotator.id
        )
        added, more = _add_tasks(client, project_id, bundle, tasks, created=created)
        notes += more
        if backend_url:
            notes += _connect(client, project_id, backend_url, backend_auth)
        result = PublishedProject(
            annotator=email,
            project_id=project_id,
            title=title,
            tasks_added=added,
            tasks_total=len(tasks),
            account_created=annotator.password is not None,
            password=passwords.get(email),
            notes=notes,
        )
        published.append(result)
        progress(
            f"{email}: project {project_id} ({title}): {added} of {len(tasks)} tasks added; "
            f"{'; '.join(notes) or 'nothing to do'}"
        )
    return published


# -- publish's steps: check, accounts, projects, tasks, connect -----------------------------


def _check_annotators(annotators: Sequence[str], mode: str) -> list[str]:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    emails = [a.strip() for a in annotators if a.strip()]
    if not emails or any("@" not in a for a in emails):
        raise ValueError(f"annotators must be e-mail addresses, got {list(annotators)!r}")
    return emails


def _checked_table(
    bundle: Path, files_root: Path, *, categories, warn: Callable[[str], None]
) -> pd.DataFrame:
    """The bundle's table, after every check that needs no Label Studio (see .checks)."""
    check_under_files_root(bundle, files_root)
    check_embeddings(bundle, warn=warn)  # a bad embeddings file stops publish here
    return load_bundle(bundle, categories=categories, warn=warn)


def _account(manager, book: ProjectBook, email: str, mode: str, passwords: dict) -> tuple:
    """The annotator's account, organization and membership; a new password stored at once."""
    title = project_title(email, mode)
    # A project of theirs outside their organization (a data dir from before the isolation:
    # every project in the first organization) moves into it.
    me = manager.me()["id"]
    elsewhere = [
        (organization, p["id"])
        for organization, p in manager.projects()
        if p["title"] == title and (p.get("created_by") or {}).get("id") == me
    ]
    annotator = manager.ensure_annotator(email, adopt=[i for _, i in elsewhere])
    notes = []
    if annotator.password:
        book.store_password(manager.url, email, annotator.password)
        passwords[email] = annotator.password
        notes.append("account and organization created")
    notes += [
        f"project {i} moved into their organization"
        for organization, i in elsewhere
        if organization != annotator.organization
    ]
    return annotator, notes


def _project(
    manager, client, book: ProjectBook, annotator, *, mode: str, bundle: Path, config: str
) -> tuple[int, str, bool]:
    """``(id, title, created)`` of the annotator's project: the recorded one, else (a data dir
    from before the record) the manager's project of its title in their organization, else a
    new one. Recorded by id at once."""
    title = project_title(annotator.email, mode)
    me = manager.me()["id"]
    theirs = {p["id"]: p for p in annotator.projects if p["created_by_id"] == me}
    recorded = book.find(manager.url, annotator.email, mode)
    if recorded is not None and recorded.project_id in theirs:
        project_id = recorded.project_id
    else:
        project_id = next((i for i, p in theirs.items() if p["title"] == title), None)
    created = project_id is None
    if created:
        with explain_refusal(f"creating the project of {annotator.email}"):
            project_id = client.projects.create(
                title=title,
                description=f"{PROJECT_MARKER}: {mode} naming of {bundle.name} by "
                f"{annotator.email}",
                label_config=config,
            ).id
    book.record(
        ProjectRecord(
            url=manager.url,
            project_id=int(project_id),
            annotator=annotator.email,
            mode=mode,
            annotator_id=annotator.id,
            title=title,
            bundle=str(bundle),
        )
    )
    return int(project_id), title, created


def _add_tasks(
    client, project_id: int, bundle: Path, tasks: list[dict], *, created: bool
) -> tuple[int, list[str]]:
    """The bundle's local files storage and the tasks the project lacks: ``(added, notes)``."""
    have = set() if created else _existing_task_keys(client, project_id)
    missing = [t for t in tasks if task_key(t["data"]) not in have]
    if not list(client.import_storage.local.list(project=project_id)):
        with explain_refusal(f"adding the bundle's local files storage to project {project_id}"):
            client.import_storage.local.create(
                project=project_id, path=str(bundle), title=f"bundle {bundle.name}"
            )
    started = time.perf_counter()
    with explain_refusal(f"importing tasks into project {project_id}"):
        for start in range(0, len(missing), 5000):
            client.projects.import_tasks(project_id, request=missing[start : start + 5000])
    if not missing:
        return 0, []
    return len(missing), [f"{len(missing)} tasks imported in {time.perf_counter() - started:.1f} s"]


def _connect(client, project_id: int, backend_url: str, auth: tuple[str, str] | None) -> list:
    """The ML backend, and Label Studio asking it for a proposal when a task is opened."""
    notes = _connect_backend(client, project_id, backend_url, auth)
    # No prediction is made now: Label Studio asks the backend when the annotator opens a task
    # that has none, so the proposal reflects everything they submitted before
    # (docs/label-studio.md, "What the proposal saves").
    if not client.projects.get(project_id).evaluate_predictions_automatically:
        client.projects.update(project_id, evaluate_predictions_automatically=True)
        notes.append("predictions made when a task is opened")
    return notes


# The events the backend learns from. Label Studio's own webhook for an ML backend sends every
# action; in 1.23.2 its LABEL_LINK_CREATED event makes POST /api/labels fail with a 500
# ("list.count() takes exactly one argument"), which breaks the Taxonomy's "+ Add". So the
# webhook is narrowed to these (this also keeps TASKS_CREATED's big payload off imports).
BACKEND_WEBHOOK_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED")


def _connect_backend(
    client, project_id: int, backend_url: str, auth: tuple[str, str] | None
) -> list[str]:
    """Connect the ML backend (once, with its basic auth) and make its webhook send what the
    backend needs, with the same credentials."""
    backend_url = backend_url.rstrip("/")
    options: dict = {"auth_method": "NONE"}
    if auth:
        options = {"auth_method": "BASIC_AUTH", "basic_auth_user": auth[0]}
        options["basic_auth_pass"] = auth[1]
    notes = []
    known = [b for b in client.ml.list(project=project_id) if b.url.rstrip("/") == backend_url]
    with explain_refusal(f"connecting the ML backend {backend_url} to project {project_id}"):
        if not known:
            client.ml.create(
                project=project_id,
                url=backend_url,
                title="xnaming backend",
                is_interactive=True,
                **options,
            )
            notes.append("ML backend connected")
        elif auth or known[0].auth_method not in (None, "NONE"):
            # The secret may be new (a connection from before it, or a new data dir).
            # project too: Label Studio 1.23.2 sets the backend up again and needs it.
            client.ml.update(known[0].id, project=project_id, url=backend_url, **options)
            if (known[0].auth_method, known[0].basic_auth_user) != (
                options["auth_method"],
                options.get("basic_auth_user"),
            ):
                notes.append("ML backend's credentials set")
    headers = {}
    if auth:
        # Label Studio creates the backend's webhook without the credentials: add them.
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        headers = {"Authorization": f"Basic {token}"}
    for hook in client.webhooks.list(project=project_id):
        if hook.url.rstrip("/") != backend_url + "/webhook":
            continue
        if (
            hook.send_for_all_actions
            or sorted(hook.actions or []) != sorted(BACKEND_WEBHOOK_ACTIONS)
            or (hook.headers or {}) != headers
        ):
            client.webhooks.update(
                id=hook.id,
                url=hook.url,
                send_for_all_actions=False,
                actions=list(BACKEND_WEBHOOK_ACTIONS),
                headers=headers,
                send_payload=True,
            )
            notes.append("webhook set to annotation events" + (" with basic auth" if auth else ""))
    return notes
