"""``xnaming collect``: every published project's export -> the tidy namings CSV.

Exports each project that ``xnaming publish`` made (found on the server by its title), keeps the
raw JSON exports next to the CSV, and reads them with :mod:`label_config.results`, the one
reader of Label Studio exports (its rules, e.g. for skipped annotations, are in
``docs/formats.md``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from label_config import NAMINGS_COLUMNS, read_label_studio_export
from ls_backend.publish import PROJECT_MARKER

__all__ = ["collect"]


def collect(
    url: str, token: str, out: str | Path, *, progress: Callable[[str], None] = print
) -> tuple[pd.DataFrame, Path]:
    """Export all xnaming projects and write the namings table.

    Parameters
    ----------
    url, token
        Label Studio and a personal access token of its owner.
    out
        The CSV to write; raw exports go to ``<out stem>-exports/project-<id>.json``.
    progress
        Called with one line per project.

    Returns
    -------
    (pandas.DataFrame, pathlib.Path)
        The namings table and the directory of raw exports.
    """
    from label_studio_sdk import LabelStudio

    out = Path(out)
    raw_dir = out.with_name(f"{out.stem}-exports")
    raw_dir.mkdir(parents=True, exist_ok=True)
    client = LabelStudio(base_url=url, api_key=token, timeout=300)
    projects = [
        p for p in client.projects.list() if (p.title or "").startswith(PROJECT_MARKER + " ")
    ]
    if not projects:
        raise LookupError(f"no xnaming projects on {url}: run `xnaming publish` first")
    frames = []
    for project in sorted(projects, key=lambda p: p.id):
        chunks = client.projects.exports.download_sync(
            project.id, export_type="JSON", download_all_tasks=True
        )
        raw = b"".join(chunks)
        path = raw_dir / f"project-{project.id}.json"
        path.write_bytes(raw)
        table = read_label_studio_export(json.loads(raw))
        frames.append(table)
        progress(f"project {project.id} ({project.title}): {len(table)} rows -> {path}")
    namings = pd.concat(frames, ignore_index=True)[list(NAMINGS_COLUMNS)]
    out.parent.mkdir(parents=True, exist_ok=True)
    namings.to_csv(out, index=False)
    return namings, raw_dir
