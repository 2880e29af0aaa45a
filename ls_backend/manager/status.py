"""``xnaming status [--watch]``: each annotator's progress, from Label Studio's API only.

Per published project (one per annotator and mode): tasks done of total (a task is done when
its annotator submitted it; skipped ones are not), the maps of done tasks named, left unsorted
and discarded, the maps not reached yet, the annotator's concepts so far and their last
activity. It reads the same exports as ``collect``, with the same attribution: annotations by
anyone but the project's annotator are counted apart (``foreign``) and never as theirs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from label_config import DISCARDED, NAMED, UNNAMED, read_label_studio_export
from label_config.tasks import activation_ids
from ls_backend.manager.collect import own_annotations, published_exports
from ls_backend.manager.projects import ProjectRecord

__all__ = ["ProjectStatus", "format_status", "project_status", "status", "watch"]


@dataclass
class ProjectStatus:
    """One annotator's progress in one project."""

    annotator: str
    mode: str
    project_id: int
    tasks_done: int
    tasks_total: int
    named: int
    unsorted: int
    discarded: int
    not_reached: int
    concepts: list[str] = field(default_factory=list)
    last_activity: str = ""  # ISO time of the annotator's latest annotation, "" for none
    foreign: int = 0  # annotations by others in this project (never counted)
    active: bool = True  # False once the annotator was removed

    @property
    def unit(self) -> str:
        return "boards" if self.mode == "board" else "maps"


def project_status(export, emails: dict[int, str], *, active: bool = True) -> ProjectStatus:
    """The figures of one :class:`ls_backend.manager.collect.PublishedExport`."""
    tasks, foreign = own_annotations(export, emails)
    done = [t for t in tasks if any(not a.get("was_cancelled") for a in t["annotations"])]
    reached = {i for t in done for i in activation_ids(t.get("data", {}))}
    namings = read_label_studio_export(tasks)
    seen = namings[namings["activation_id"].isin(reached)]
    counts = seen["status"].value_counts()
    times = [
        str(a.get("updated_at") or a.get("created_at") or "")
        for t in tasks
        for a in t["annotations"]
    ]
    return ProjectStatus(
        annotator=export.annotator,
        mode=export.mode,
        project_id=export.project_id,
        tasks_done=len(done),
        tasks_total=len(tasks),
        named=int(counts.get(NAMED, 0)),
        unsorted=int(counts.get(UNNAMED, 0)),
        discarded=int(counts.get(DISCARDED, 0)),
        not_reached=int((~namings["activation_id"].isin(reached)).sum()),
        concepts=sorted(set(seen.loc[seen["status"] == NAMED, "concept"])),
        last_activity=max(times, default=""),
        foreign=len(foreign),
        active=active,
    )


def status(
    url: str, token: str, *, projects: Sequence[ProjectRecord], warn: Callable[[str], None] = print
) -> list[ProjectStatus]:
    """Every recorded project's figures (by id, see :mod:`ls_backend.manager.projects`), by
    annotator then mode."""
    from ls_backend.manager.client import Manager

    exports, emails = published_exports(url, token, projects, warn=warn)
    active = {a.email.lower(): a.active for a in Manager(url, token).annotators()}
    rows = [
        project_status(e, emails, active=active.get(e.annotator.lower(), False)) for e in exports
    ]
    return sorted(rows, key=lambda r: (r.annotator, r.mode, r.project_id))


def format_status(rows: list[ProjectStatus]) -> str:
    """The table ``xnaming status`` prints."""
    if not rows:
        return "no xnaming projects yet: run `xnaming publish`"
    header = (
        "annotator",
        "mode",
        "project",
        "done",
        "named",
        "unsorted",
        "discarded",
        "not reached",
        "concepts",
        "last activity",
    )
    lines = [header]
    for r in rows:
        concepts = ", ".join(r.concepts)
        lines.append(
            (
                r.annotator + ("" if r.active else " (removed)"),
                r.mode,
                str(r.project_id),
                f"{r.tasks_done}/{r.tasks_total} {r.unit}",
                str(r.named),
                str(r.unsorted),
                str(r.discarded),
                str(r.not_reached),
                f"{len(r.concepts)}" + (f" ({concepts[:40]})" if concepts else ""),
                r.last_activity[:16].replace("T", " ") or "-",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
    foreign = [r for r in rows if r.foreign]
    for r in foreign:
        text.append(
            f"warning: project {r.project_id} ({r.annotator}) holds {r.foreign} annotation(s) "
            "by someone else, not counted (`xnaming collect` names them)"
        )
    return "\n".join(text)


def watch(
    url: str,
    token: str,
    *,
    projects: Sequence[ProjectRecord],
    every: float,
    show: Callable[[str], None] = print,
    rounds: int | None = None,
) -> None:
    """Print the status every ``every`` seconds (``rounds`` times; forever when None)."""
    done = 0
    while rounds is None or done < rounds:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        table = format_status(status(url, token, projects=projects, warn=lambda line: None))
        show(f"\x1b[2J\x1b[H{stamp}  (every {every:g} s; Ctrl-C stops)\n{table}")
        done += 1
        if rounds is None or done < rounds:
            time.sleep(every)
