"""``xnaming demo``: the whole pipeline on a small generated data set, stage by stage.

Each stage is a function of the demo's working directory that returns one line saying where
its outputs are. A stage whose code is not built yet has ``run=None``: the demo names it and
every stage after it (they need its outputs), and still exits 0 when everything that could run
did, so ``make demo`` always shows how far the project has come.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_WORKDIR", "STAGES", "Stage", "run_demo"]

DEFAULT_WORKDIR = Path("runs/demo")


@dataclass(frozen=True)
class Stage:
    """One step of the demo.

    Parameters
    ----------
    name
        Short name, as printed.
    title
        What the stage does, in a few words.
    issue
        The issue that builds it.
    run
        ``run(workdir, serve)`` does the stage and returns a line naming its outputs;
        ``None`` while not built.
    """

    name: str
    title: str
    issue: int
    run: Callable[[Path, bool], str] | None = None


STAGES: tuple[Stage, ...] = (
    Stage("data", "generate the toybirds data set", 3),
    Stage("train dnn", "train the toy CNN classifier", 3),
    Stage("train xnn", "train the per-class explanation networks", 3),
    Stage("explain", "significant X-features and their activation maps", 4),
    Stage("ls start", "start Label Studio and the ML backend", 6),
    Stage("publish", "publish boards for two demo annotators", 6),
    Stage("simulate", "simulate five annotators' namings", 7),
    Stage("analyze", "measures, tables, figures and report.html", 5),
)


def run_demo(workdir: Path, serve: bool = True) -> int:
    """Run every built stage in order; report the ones that are not built yet.

    Parameters
    ----------
    workdir
        Directory that receives every stage's outputs; created if missing.
    serve
        Leave Label Studio running at the end (``False``: stop it, for CI).

    Returns
    -------
    int
        0 when every stage that could run succeeded (stages not built yet do not count as
        failures); the exception of a failing stage propagates.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"xnaming demo: working in {workdir}/")
    missing: Stage | None = None
    for number, stage in enumerate(STAGES, start=1):
        label = f"  {number}. {stage.name:<10} {stage.title:<50}"
        if missing is None and stage.run is not None:
            print(f"{label} running", flush=True)
            print(f"{'':17}{stage.run(workdir, serve)}")
            continue
        if missing is None:
            missing = stage
            print(f"{label} not built yet (issue {stage.issue})")
        elif stage.run is None:
            print(f"{label} not built yet (issue {stage.issue})")
        else:
            print(f"{label} waits for '{missing.name}'")
    not_built = [stage for stage in STAGES if stage.run is None]
    if not_built:
        print(
            f"{len(not_built)} of {len(STAGES)} stages are not built yet; "
            "the demo ran everything before the first of them.",
            file=sys.stderr,
        )
    else:
        print("xnaming demo: all stages done.")
    return 0
