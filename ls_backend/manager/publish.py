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
        ``bundle`` is not a finished map bundle (the message says what is missing).
    ValueError
        Unknown categories, or a raw map that cannot be read.
    """
    bundle = Path(bundle)
    read = read_bundle(bundle)
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
    progress: Callable[[str], None] = print,
) -> list[PublishedProject]:
    """Publish ``bundle`` to Label Studio, one project per annotator; idempotent.

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
        ``(user, password)`` when the backend requires basic auth.
    groups
        Group count of the board config.
    passwords
        Known annotator passwords; new accounts' passwords are added to it.
    progress
        Called with one line per step.

    Returns
    -------
    list of PublishedProject
    """
    from ls_backend.manager.client import Manager

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    emails = [a.strip() for a in annotators if a.strip()]
    bad = [a for a in emails if "@" not in a]
    if not emails or bad:
        raise ValueError(f"annotators must be e-mail addresses, got {list(annotators)!r}")
    bundle = Path(bundle).resolve()
    files_root = Path(files_root).resolve()
    check_embeddings(bundle, warn=progress)  # a bad embeddings file stops publish before any change
    table = load_bundle(bundle, categories=categories, warn=progress)
    config = board_config(groups=groups) if mode == "board" else per_map_config()
    manager = Manager(url, token)
    manager.annotators()  # fails clearly on a server without the isolation
    passwords = passwords if passwords is not None else {}
    published = []
    for email in emails:
        title = project_title(email, mode)
        # A project of theirs outside their organization (a data dir from before the
        # isolation: every project in the first organization) moves into it.
        elsewhere = [
            (organization, p["id"])
            for organization, p in manager.projects()
            if p["title"] == title and (p.get("created_by") or {}).get("id") == manager.me()["id"]
        ]
        annotator = manager.ensure_annotator(email, adopt=[i for _, i in elsewhere])
        password = annotator.password
        if password:
            passwords[email] = password
        make = board_tasks if mode == "board" else per_map_tasks
        # The annotator's user id goes into the task data: the backend learns from their
        # own annotations only.
        tasks = make(
            table, bundle, files_root=files_root, annotator=email, annotator_id=annotator.id
        )
        # Everything below happens in the annotator's organization.
        client = manager.client(annotator.organization)
        # Only a project the manager made counts (an annotator may create projects too).
        project_id = next(
            (
                p["id"]
                for p in annotator.projects
                if p["title"] == title and p["created_by_id"] == manager.me()["id"]
            ),
            None,
        )
        notes = ["account and organization created"] if password else []
        notes += [
            f"project {i} moved into their organization"
            for organization, i in elsewhere
            if organization != annotator.organization
        ]
        have: set[str] = set()
        if project_id is None:
            project_id = client.projects.create(
                title=title,
                description=f"{PROJECT_MARKER}: {mode} naming of {bundle.name} by {email}",
                label_config=config,
            ).id
            notes.append("project created")
        else:
            have = _existing_task_keys(client, project_id)
        missing = [t for t in tasks if task_key(t["data"]) not in have]
        if not list(client.import_storage.local.list(project=project_id)):
            client.import_storage.local.create(
                project=project_id, path=str(bundle), title=f"bundle {bundle.name}"
            )
        started = time.perf_counter()
        for start in range(0, len(missing), 5000):
            client.projects.import_tasks(project_id, request=missing[start : start + 5000])
        if missing:
            notes.append(f"{len(missing)} tasks imported in {time.perf_counter() - started:.1f} s")
        if backend_url:
            notes += _connect_backend(client, project_id, backend_url, backend_auth)
            # No prediction is made now: Label Studio asks the backend when the annotator
            # opens a task that has none, so the proposal reflects everything they
            # submitted before (docs/label-studio.md, "What the proposal saves").
            if not client.projects.get(project_id).evaluate_predictions_automatically:
                client.projects.update(project_id, evaluate_predictions_automatically=True)
                notes.append("predictions made when a task is opened")
        result = PublishedProject(
            annotator=email,
            project_id=project_id,
            title=title,
            tasks_added=len(missing),
            tasks_total=len(tasks),
            account_created=password is not None,
            password=password or passwords.get(email),
            notes=notes,
        )
        published.append(result)
        progress(
            f"{email}: project {project_id} ({title}): {result.tasks_added} of "
            f"{result.tasks_total} tasks added; {'; '.join(notes) or 'nothing to do'}"
        )
    return published


# The events the backend learns from. Label Studio's own webhook for an ML backend sends every
# action; in 1.23.2 its LABEL_LINK_CREATED event makes POST /api/labels fail with a 500
# ("list.count() takes exactly one argument"), which breaks the Taxonomy's "+ Add". So the
# webhook is narrowed to these (this also keeps TASKS_CREATED's big payload off imports).
BACKEND_WEBHOOK_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED")


def _connect_backend(
    client, project_id: int, backend_url: str, auth: tuple[str, str] | None
) -> list[str]:
    """Connect the ML backend (once) and make its webhook send what the backend needs."""
    backend_url = backend_url.rstrip("/")
    notes = []
    if not any(b.url.rstrip("/") == backend_url for b in client.ml.list(project=project_id)):
        options: dict = {}
        if auth:
            options = {
                "auth_method": "BASIC_AUTH",
                "basic_auth_user": auth[0],
                "basic_auth_pass": auth[1],
            }
        client.ml.create(
            project=project_id,
            url=backend_url,
            title="xnaming backend",
            is_interactive=True,
            **options,
        )
        notes.append("ML backend connected")
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
