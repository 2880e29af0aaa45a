"""``xnaming collect``: every published project's export -> the tidy namings CSV.

Exports each project that ``xnaming publish`` recorded (:mod:`ls_backend.manager.projects`:
by id, never by title, which can be changed), keeps the raw JSON exports next to the CSV, and
reads them with :mod:`label_config.results`, the one reader of Label Studio exports (its rules,
e.g. for skipped annotations, are in ``docs/formats.md``).

Attribution: a project belongs to the annotator publish recorded for it; only its tasks made
for that annotator (the task data's annotator) and only annotations that annotator made
(``completed_by``) are read. Any other author's annotation, and any task made for someone
else, is reported and never counted; the raw export keeps it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from label_config import NAMINGS_COLUMNS, read_label_studio_export
from label_config.tasks import ANNOTATOR
from ls_backend.manager.projects import ProjectRecord

__all__ = [
    "ForeignAnnotation",
    "PublishedExport",
    "collect",
    "own_annotations",
    "published_exports",
    "read_own_namings",
]


@dataclass(frozen=True)
class ForeignAnnotation:
    """An annotation in an annotator's project by someone else."""

    project_id: int
    task_id: int
    annotation_id: int
    author: str  # e-mail, or "user N" when the account is gone
    annotator: str  # whose project it is

    def __str__(self) -> str:
        return (
            f"project {self.project_id} ({self.annotator}): annotation {self.annotation_id} "
            f"on task {self.task_id} is by {self.author}, not counted"
        )


@dataclass
class PublishedExport:
    """One published project's full JSON export, and whose it is."""

    project_id: int
    title: str
    mode: str
    annotator: str
    annotator_id: int | None  # None: no such account (then nothing is counted)
    tasks: list[dict]
    raw: bytes
    isolated: bool  # the project lies in the annotator's own organization


def published_exports(
    url: str, token: str, projects: Sequence[ProjectRecord], *, warn: Callable[[str], None] = print
) -> tuple[list[PublishedExport], dict[int, str]]:
    """Export every recorded project that the server still has.

    Parameters
    ----------
    url, token
        Label Studio and a personal access token of its owner.
    projects
        What publish recorded (:meth:`ls_backend.manager.projects.ProjectBook.projects`).
    warn
        Called with one line per recorded project the server no longer has.

    Returns
    -------
    (list of PublishedExport, dict)
        The exports in project-id order, and every known account's e-mail by user id.
    """
    from ls_backend.manager.client import Manager

    manager = Manager(url, token, timeout=300)
    annotators = {a.email.lower(): a for a in manager.annotators()}
    me = manager.me()
    emails = {a.id: a.email for a in annotators.values()} | {int(me["id"]): str(me["email"])}
    where = {int(p["id"]): (organization, p) for organization, p in manager.projects()}
    found = []
    for record in projects:
        if record.project_id not in where:
            warn(
                f"warning: project {record.project_id} ({record.annotator}, {record.mode}) is "
                f"recorded but not on {url} any more: skipped"
            )
            continue
        organization, project = where[record.project_id]
        account = annotators.get(record.annotator.lower())
        chunks = manager.client(organization).projects.exports.download_sync(
            record.project_id, export_type="JSON", download_all_tasks=True
        )
        raw = b"".join(chunks)
        found.append(
            PublishedExport(
                project_id=record.project_id,
                title=str(project.get("title") or ""),
                mode=record.mode,
                annotator=record.annotator,
                annotator_id=account.id if account else None,
                tasks=json.loads(raw),
                raw=raw,
                isolated=account is not None and account.organization == organization,
            )
        )
    return sorted(found, key=lambda e: e.project_id), emails


def own_annotations(
    export: PublishedExport, emails: dict[int, str]
) -> tuple[list[dict], list[ForeignAnnotation]]:
    """The export's tasks made for its annotator, keeping only that annotator's annotations;
    and every annotation left out (by someone else, or on a task made for someone else)."""
    tasks, foreign = [], []
    for task in export.tasks:
        meant_for = (task.get("data") or {}).get(ANNOTATOR, export.annotator)
        ours = str(meant_for).lower() == export.annotator.lower()
        mine = []
        for annotation in task.get("annotations", []):
            author = annotation.get("completed_by")
            if isinstance(author, dict):  # some export formats nest the user
                author = author.get("id")
            if ours and export.annotator_id is not None and author == export.annotator_id:
                mine.append(annotation)
                continue
            who = emails.get(author, f"user {author}") if isinstance(author, int) else "nobody"
            if not ours:
                who += f", on a task made for {meant_for}"
            foreign.append(
                ForeignAnnotation(
                    project_id=export.project_id,
                    task_id=int(task.get("id", -1)),
                    annotation_id=int(annotation.get("id", -1)),
                    author=who,
                    annotator=export.annotator,
                )
            )
        if ours:
            tasks.append({**task, "annotations": mine})
    return tasks, foreign


def read_own_namings(
    export: PublishedExport, emails: dict[int, str]
) -> tuple[pd.DataFrame, list[ForeignAnnotation]]:
    """The namings table of one export from the annotator's own annotations only."""
    tasks, foreign = own_annotations(export, emails)
    return read_label_studio_export(tasks), foreign


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def collect(
    url: str,
    token: str,
    out: str | Path,
    *,
    projects: Sequence[ProjectRecord],
    progress: Callable[[str], None] = print,
    warn: Callable[[str], None] = _to_stderr,
) -> tuple[pd.DataFrame, Path]:
    """Export the recorded xnaming projects and write the namings table.

    Parameters
    ----------
    url, token
        Label Studio and a personal access token of its owner.
    out
        The CSV to write; raw exports go to ``<out stem>-exports/project-<id>.json``.
    projects
        The projects publish recorded for ``url`` (:mod:`ls_backend.manager.projects`).
    progress
        Called with one line per project.
    warn
        Called with one ``warning: ...`` line per annotation that is not the project's
        annotator's (never counted), per project outside the annotator's organization, and per
        recorded project the server no longer has.

    Returns
    -------
    (pandas.DataFrame, pathlib.Path)
        The namings table and the directory of raw exports.
    """
    out = Path(out)
    exports, emails = published_exports(url, token, projects, warn=warn)
    if not exports:
        raise LookupError(
            f"no published projects recorded for {url}: run `xnaming publish` (with the same "
            "--data-dir) first"
        )
    raw_dir = out.with_name(f"{out.stem}-exports")
    raw_dir.mkdir(parents=True, exist_ok=True)
    frames = []
    for export in exports:
        path = raw_dir / f"project-{export.project_id}.json"
        path.write_bytes(export.raw)
        table, foreign = read_own_namings(export, emails)
        frames.append(table)
        progress(f"project {export.project_id} ({export.annotator}, {export.mode}): "
                 f"{len(table)} rows -> {path}")  # fmt: skip
        if not export.isolated:
            warn(
                f"warning: project {export.project_id} is not in {export.annotator}'s own "
                "organization: other annotators may have seen it (publish again to isolate "
                "new projects)"
            )
        for annotation in foreign:
            warn(f"warning: {annotation}")
    namings = pd.concat(frames, ignore_index=True)[list(NAMINGS_COLUMNS)]
    out.parent.mkdir(parents=True, exist_ok=True)
    namings.to_csv(out, index=False)
    return namings, raw_dir
