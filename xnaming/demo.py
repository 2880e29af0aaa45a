"""``xnaming demo``: the whole pipeline on generated toybirds, stage by stage.

Each stage is a function of the demo's :class:`Demo` state that returns one line saying where
its outputs are. A finished stage leaves a marker in ``WORKDIR/.done/``; a re-run skips it, and
reruns every stage after the first one that runs again. Stages that keep a server (``ls
start``) always run. A failing stage stops the demo (after stopping any server) and its error
reaches ``xnaming``'s error boundary.

Heavy libraries are imported inside the stages, so importing this module is cheap.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.namers.annotator_profiles import DEFAULT_ANNOTATORS
from xnn_training.defaults import TOYBIRDS_CLASSES, TOYBIRDS_IMAGE_SIZE, TOYBIRDS_PER_CLASS

__all__ = [
    "CORRECTION_STAGES",
    "DEFAULT_WORKDIR",
    "FULL",
    "QUICK",
    "STAGES",
    "Demo",
    "Size",
    "Stage",
    "run_demo",
]

DEFAULT_WORKDIR = Path("runs/demo")
DEMO_ANNOTATORS = ("ann1@demo.xnaming.org", "ann2@demo.xnaming.org")


@dataclass(frozen=True)
class Size:
    """How big the demo's data and training are."""

    classes: int = TOYBIRDS_CLASSES
    per_class: int = TOYBIRDS_PER_CLASS
    image_size: int = TOYBIRDS_IMAGE_SIZE
    dnn_epochs: int | None = None  # the trainer's default
    xnn_epochs: int | None = None


FULL = Size()
# The whole chain in a few minutes, for tests and a first look; its figures mean little.
QUICK = Size(classes=3, per_class=24, image_size=48, dnn_epochs=3, xnn_epochs=20)


@dataclass
class Demo:
    """What the stages share: where they write, and what they leave for the later ones."""

    workdir: Path
    size: Size = FULL
    shortcut: str | None = None  # the class that carries a planted cue (toybirds --shortcut)
    server: Any = None  # the Label Studio server of the "ls start" stage
    credentials: Any = None
    logins: list[str] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.workdir / "toybirds"

    @property
    def dnn(self) -> Path:
        return self.workdir / "dnn"

    @property
    def xnn(self) -> Path:
        return self.workdir / "xnn"

    @property
    def bundle(self) -> Path:
        return self.workdir / "bundle"

    @property
    def namings(self) -> Path:
        return self.workdir / "namings-simulated.csv"

    @property
    def report(self) -> Path:
        return self.workdir / "report"

    def after(self, name: str) -> Path:
        """Where the correction loop (``--correct``) writes: ``WORKDIR/correction/<name>``."""
        return self.workdir / "correction" / name


@dataclass(frozen=True)
class Stage:
    """One step of the demo.

    Parameters
    ----------
    name
        Short name, as printed.
    title
        What the stage does, in a few words.
    run
        ``run(demo)`` does the stage and returns a line naming its outputs.
    always
        Run even when an earlier demo finished it (stages that start servers).
    """

    name: str
    title: str
    run: Callable[[Demo], str]
    always: bool = False


def _data(demo: Demo) -> str:
    from xnn_training import make_toybirds

    size = demo.size
    make_toybirds(
        demo.data,
        classes=size.classes,
        per_class=size.per_class,
        size=size.image_size,
        seed=0,
        shortcut=demo.shortcut,
    )
    planted = f", a cue planted in class {demo.shortcut}" if demo.shortcut else ""
    return f"toybirds: {demo.data}{planted}"


def _train_dnn(demo: Demo) -> str:
    from xnn_training import train_dnn

    train_dnn(demo.data, demo.dnn, arch="toycnn", epochs=demo.size.dnn_epochs, overwrite=True)
    return f"classifier run: {demo.dnn}"


def _train_xnn(demo: Demo) -> str:
    from xnn_training import train_xnn

    epochs = {} if demo.size.xnn_epochs is None else {"epochs": demo.size.xnn_epochs}
    train_xnn(demo.dnn, demo.xnn, overwrite=True, **epochs)
    return f"xNN run and fidelity.csv: {demo.xnn}"


def _explain(demo: Demo) -> str:
    from xnn_training.maps.explain import explain

    explain(demo.dnn, demo.xnn, demo.data, demo.bundle, split="test", explain="true")
    return f"map bundle: {demo.bundle}"


def _ls_start(demo: Demo) -> str:
    from ls_backend.server import LabelStudioServer, free_port, port_in_use

    # The usual ports when they are free (a stable URL), any free ones otherwise.
    port, backend_port = 8080, 8081
    if port_in_use(port) or port_in_use(backend_port):
        port, backend_port = free_port(), free_port()
    demo.server = LabelStudioServer(
        demo.workdir / "label-studio", port=port, files_root=demo.workdir, backend_port=backend_port
    )
    demo.credentials = demo.server.start()
    return f"Label Studio: {demo.credentials.url} (data in {demo.server.data_dir})"


def _publish(demo: Demo) -> str:
    from ls_backend.manager.publish import publish

    credentials = demo.credentials
    projects = publish(
        demo.bundle,
        DEMO_ANNOTATORS,
        url=credentials.url,
        token=credentials.token,
        files_root=demo.workdir,
        mode="board",
        backend_url=credentials.backend_url,
        backend_auth=credentials.backend_auth,
        passwords=credentials.annotators,
        progress=lambda message: None,
    )
    credentials.save(demo.server.data_dir)
    demo.logins = [
        f"{project.annotator} / {credentials.annotators.get(project.annotator, '?')}: "
        f"{credentials.url}/projects/{project.project_id}"
        for project in projects
    ]
    return f"boards for {len(projects)} demo annotators, with proposed groups"


def _simulate(demo: Demo) -> str:
    from analysis.namers.simulated_annotators import simulate_bundle

    namings = simulate_bundle(demo.bundle, demo.data, annotators=DEFAULT_ANNOTATORS)
    namings.to_csv(demo.namings, index=False)
    return f"{DEFAULT_ANNOTATORS} simulated annotators' namings: {demo.namings}"


def _analyze(demo: Demo) -> str:
    from analysis import analyze, load_namings, read_activations, write_report

    activations = read_activations(demo.bundle)
    results = analyze(activations, load_namings([demo.namings], activations))
    write_report(results, demo.report, bundle=demo.bundle)
    return f"report: {demo.report / 'report.html'}{_shortcut_found(demo, results)}"


def _shortcut_found(demo: Demo, results: Any) -> str:
    """With a planted shortcut: where distrust ranks its class, and where its maps peak."""
    if demo.shortcut is None:
        return ""
    import json

    from xnn_training.maps.part_masks import cue_pointing_game

    planted = json.loads((demo.data / "toybirds.json").read_text())["shortcut"]["category"]
    ranking = list(results.distrust["category"])
    row = results.distrust.iloc[ranking.index(planted)]
    game = cue_pointing_game(demo.bundle, demo.data)
    return (
        f"\n{'':5}planted shortcut in {planted}: ranked {int(row['rank'])} of {len(ranking)} "
        f"among decisions to distrust ({100 * row['distrusted_share']:.0f}% distrusted, "
        f"flagged: {bool(row['flagged'])}); {int(game['on_cue'].sum())} of {len(game)} of its "
        f"maps peak on the cue"
    )


def _explain_feedback(demo: Demo) -> str:
    from xnn_training.maps.explain import explain

    explain(demo.dnn, demo.xnn, demo.data, demo.after("feedback-bundle"), split="feedback")
    return f"the feedback split's maps: {demo.after('feedback-bundle')}"


def _simulate_feedback(demo: Demo) -> str:
    from analysis.namers.simulated_annotators import simulate_bundle

    namings = simulate_bundle(demo.after("feedback-bundle"), demo.data)
    namings.to_csv(demo.after("feedback-namings.csv"), index=False)
    return f"their simulated namings: {demo.after('feedback-namings.csv')}"


def _correct(demo: Demo) -> str:
    from xnn_training.training.correct import correct_dnn
    from xnn_training.training.evaluate import evaluate

    bundle, namings = demo.after("feedback-bundle"), demo.after("feedback-namings.csv")
    correct_dnn(demo.dnn, demo.after("dnn"), namings=namings, bundle=bundle, overwrite=True)
    evaluate(demo.dnn, demo.data, demo.after("evaluate-before"))
    evaluate(demo.after("dnn"), demo.data, demo.after("evaluate-after"))
    return f"corrected classifier run: {demo.after('dnn')}"


def _retrain_explain(demo: Demo) -> str:
    from analysis.namers.simulated_annotators import simulate_bundle
    from xnn_training import train_xnn
    from xnn_training.maps.explain import explain

    epochs = {} if demo.size.xnn_epochs is None else {"epochs": demo.size.xnn_epochs}
    train_xnn(demo.after("dnn"), demo.after("xnn"), overwrite=True, **epochs)
    explain(demo.after("dnn"), demo.after("xnn"), demo.data, demo.after("bundle"), split="test")
    namings = simulate_bundle(demo.after("bundle"), demo.data, annotators=DEFAULT_ANNOTATORS)
    namings.to_csv(demo.after("namings-simulated.csv"), index=False)
    return f"its xNN, test maps and simulated namings: {demo.after('bundle')}"


def _compare(demo: Demo) -> str:
    import argparse

    from analysis.cli import configure

    parser = argparse.ArgumentParser()
    configure(parser)
    for report, bundle, namings, accuracy, extra in (
        (demo.after("report-before"), demo.bundle, demo.namings,
         demo.after("evaluate-before"), []),
        (demo.after("report"), demo.after("bundle"), demo.after("namings-simulated.csv"),
         demo.after("evaluate-after"), ["--compare", str(demo.after("report-before"))]),
    ):  # fmt: skip
        args = parser.parse_args([
            "--activations", str(bundle), "--namings", str(namings), "--out", str(report),
            "--accuracy", str(accuracy / "accuracy.csv"), "--no-figures", *extra,
        ])  # fmt: skip
        args.handler(args)
    return f"report with before/after: {demo.after('report') / 'report.html'}"


STAGES: tuple[Stage, ...] = (
    Stage("data", "generate the toybirds data set", _data),
    Stage("train dnn", "train the toy CNN classifier", _train_dnn),
    Stage("train xnn", "train the per-class explanation networks", _train_xnn),
    Stage("explain", "significant X-features and their activation maps", _explain),
    Stage("ls start", "start Label Studio and the ML backend", _ls_start, always=True),
    Stage("publish", "publish boards for two demo annotators", _publish, always=True),
    Stage("simulate", f"simulate {DEFAULT_ANNOTATORS} annotators' namings", _simulate),
    Stage("analyze", "measures, tables, figures and report.html", _analyze),
)
CORRECTION_STAGES: tuple[Stage, ...] = (
    Stage("explain feedback", "maps of the feedback split", _explain_feedback),
    Stage("name feedback", "simulated annotators name them", _simulate_feedback),
    Stage("correct", "train dnn --from --feedback, evaluate both", _correct),
    Stage("re-explain", "new xNN, test maps, simulated namings", _retrain_explain),
    Stage("compare", "reports before and after the correction", _compare),
)
"""With ``--shortcut --correct``: the loop after the report (docs/training.md)."""


def run_demo(
    workdir: Path,
    *,
    serve: bool = True,
    size: Size = FULL,
    shortcut: str | None = None,
    correct: bool = False,
) -> int:
    """Run every stage in order, reusing those an earlier run finished.

    Parameters
    ----------
    workdir
        Directory that receives every stage's outputs; created if missing.
    serve
        Keep Label Studio running at the end until Ctrl-C (``False``: stop it, for CI).
    size
        :data:`FULL` (the default) or :data:`QUICK` (a few minutes, for tests).
    shortcut
        Plant a shortcut in this class (a name or number, ``""``: the middle class) and say at
        the end where the report ranks it among decisions to distrust.
    correct
        Then run the correction loop (:data:`CORRECTION_STAGES`): the feedback split's maps
        named by simulated annotators, the corrected classifier, its new maps and namings, and
        a report with a before/after section.

    Returns
    -------
    int
        0 when every stage succeeded; the exception of a failing stage propagates, after
        stopping any server.
    """
    if shortcut == "":
        shortcut = str(size.classes // 2 + 1)  # not the first class: ranking first means something
    demo = Demo(Path(workdir), size=size, shortcut=shortcut)
    done_dir = demo.workdir / ".done"
    done_dir.mkdir(parents=True, exist_ok=True)
    size_marker = done_dir / "size"
    identity = repr(size) + (f" shortcut={shortcut}" if shortcut else "")
    stages = STAGES + (CORRECTION_STAGES if correct else ())
    if size_marker.exists() and size_marker.read_text() != identity:
        for marker in done_dir.iterdir():  # another size: nothing earlier can be reused
            marker.unlink()
    size_marker.write_text(identity)
    print(f"xnaming demo: working in {demo.workdir}/")
    rerun = False  # once a stage runs again, every later stage must too
    try:
        for number, stage in enumerate(stages, start=1):
            label = f"[{number}/{len(stages)}] {stage.name:<10} {stage.title:<48}"
            marker = done_dir / stage.name.replace(" ", "-")
            if marker.exists() and not rerun and not stage.always:
                print(f"{label} done earlier ({marker.read_text().strip()})")
                continue
            print(f"{label} running ...", flush=True)
            started = time.monotonic()
            outcome = stage.run(demo)
            seconds = time.monotonic() - started
            print(f"{'':5}{outcome} [{seconds:.0f} s]", flush=True)
            if not stage.always:
                marker.write_text(f"{outcome} [{seconds:.0f} s]\n")
                rerun = True
        _print_summary(demo)
        if serve and demo.server is not None:
            _wait_for_interrupt()
    finally:
        if demo.server is not None:
            demo.server.stop()
    return 0


def _print_summary(demo: Demo) -> None:
    if (demo.xnn / "fidelity.csv").is_file():
        print("\nFidelity of the xNNs to the classifier (the paper's Table 1):")
        print((demo.xnn / "fidelity.csv").read_text())
    if (demo.report / "report.html").is_file():
        print(f"Report: {(demo.report / 'report.html').resolve()}")
    if demo.credentials is not None:
        print(f"Label Studio: {demo.credentials.url}")
        print(f"  admin: {demo.credentials.admin_email} / {demo.credentials.admin_password}")
        for login in demo.logins:
            print(f"  annotator {login}")
    print("xnaming demo: all stages done.")


def _wait_for_interrupt() -> None:
    print("Label Studio keeps running; press Ctrl-C to stop it.", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("Stopping Label Studio and the ML backend ...")
