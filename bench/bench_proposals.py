"""What the backend's proposal saves, measured through a real Label Studio; prints its figures.

    .venv/bin/python bench/bench_proposals.py --bundle B --namings N [--data D]
    e.g. --bundle runs/demo/bundle --namings runs/demo/namings-simulated.csv \
         --data runs/demo/toybirds

A private Label Studio and the ML backend are started (:class:`ls_backend.server.LabelStudioServer`,
as ``xnaming ls start``), the bundle (with its map embeddings) is published with
``ls_backend.manager.publish.publish`` to one project per simulated annotator of ``--namings``
(e-mail
``<name>@example.org``), and then each annotator, boards in category order, does what a person
in the labeling UI does: opens the board as themselves (``GET /api/tasks/ID/`` with their own
session: Label Studio asks the backend for the prediction then), reads the proposal, and
submits their goal board (their namings) as their annotation; the backend learns it from the
webhook before the next board is opened. With ``--data`` (the bundle's toybirds data) one more
annotator sorts every board by the fixed grouping by part: each map under the part holding most
of its visible heat, background maps discarded.

``--offline`` replays the same without Label Studio (the backend's own ``predict`` and
``webhook`` in-process on the task data ``publish`` makes): a second figure, in minutes.

Figures:
- drags: maps to drag from the proposal to the goal board vs from an all-unsorted board
  (:func:`ls_backend.backend.naming.moves_needed`), total and per annotator (goal: at least 40%
  fewer,
  no annotator worse off; fixed grouping by part: at least 70% fewer);
- names, after each annotator's first two boards: of the proposed groups with a name, the share
  whose name is the one the annotator ends up giving most of the group's maps (precision,
  goal: at least 60%); and of the annotator's named groups, the share that started as a
  proposed group of that name holding mostly its maps (recall);
- predict (live only): /predict of the largest board of the annotator with the most namings,
  as Label Studio asks it (the task's id and project, the backend's secret), p50 and p95 over
  100 calls after the replay taught the backend all their boards (goal: p50 under 100 ms); it
  also says whether the proposal differs from the one before they sorted anything.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pandas as pd
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._live import AnnotatorHands, percentile, predict_body, wait_learned
from label_config import (
    BOARD_DISCARD,
    DISCARDED,
    NAMED,
    UNSORTED,
    group_bucket,
    group_name_region,
    group_of_name_control,
    ranker_region,
)
from ls_backend.backend.app import MODEL_VERSION
from ls_backend.backend.naming import moves_needed
from ls_backend.manager.publish import board_tasks, load_bundle, publish
from ls_backend.server import LabelStudioServer, free_port

PARTS_ANNOTATOR = "parts"


def _goal_boards(namings: pd.DataFrame) -> dict[str, dict[str, dict[str, list[str]]]]:
    """annotator -> category -> goal board, keyed by concept (``_`` and ``discard`` fixed)."""
    goals: dict[str, dict[str, dict[str, list[str]]]] = {}
    for (who, category), rows in namings.groupby(["annotator", "category"]):
        board: dict[str, list[str]] = {UNSORTED: [], BOARD_DISCARD: []}
        for row in rows.itertuples():
            bucket = {NAMED: f"concept:{row.concept}", DISCARDED: BOARD_DISCARD}.get(
                row.status, UNSORTED
            )
            board.setdefault(bucket, []).append(row.activation_id)
        goals.setdefault(who, {})[category] = board
    return goals


def _part_goals(bundle: Path, data: Path) -> dict[str, dict[str, list[str]]]:
    """category -> the fixed grouping by part (bench_label_studio's hot-spot construction)."""
    from xnn_training.maps.part_masks import BACKGROUND, part_heat_table

    shares = part_heat_table(bundle, data).sort_values("share", ascending=False)
    goals: dict[str, dict[str, list[str]]] = {}
    for row in shares.drop_duplicates("activation_id").itertuples():
        board = goals.setdefault(row.category, {UNSORTED: [], BOARD_DISCARD: []})
        bucket = BOARD_DISCARD if row.part == BACKGROUND else f"concept:{row.part}"
        board.setdefault(bucket, []).append(row.activation_id)
    return goals


def _annotation(goal: dict[str, list[str]]) -> list[dict]:
    """The goal board as the annotator's result: groups g1.. with their names typed in."""
    concepts = sorted(b for b in goal if b.startswith("concept:"))
    buckets = {UNSORTED: goal[UNSORTED], BOARD_DISCARD: goal[BOARD_DISCARD]}
    names = []
    for index, bucket in enumerate(concepts, start=1):
        buckets[group_bucket(index)] = goal[bucket]
        names.append(group_name_region(index, bucket.removeprefix("concept:")))
    return [ranker_region(buckets), *names]


def _read_prediction(task: dict) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The newest prediction of our model on an opened task: buckets and bucket -> name."""
    ours = [p for p in task.get("predictions", []) if p.get("model_version") == MODEL_VERSION]
    if not ours:
        raise RuntimeError(f"task {task['id']} opened without a prediction of {MODEL_VERSION}")
    prediction = max(ours, key=lambda p: p["id"])
    buckets, names = {}, {}
    for region in prediction["result"]:
        if region["type"] == "ranker":
            buckets = region["value"]["ranker"]
        elif region["type"] == "textarea":
            index = group_of_name_control(region["from_name"])
            names[group_bucket(index)] = region["value"]["text"][0]
    return buckets, names


def _final_labels(goal: dict[str, list[str]]) -> dict[str, str]:
    return {aid: bucket for bucket, ids in goal.items() for aid in ids}


def _score_names(
    buckets: dict[str, list[str]], names: dict[str, str], goal: dict[str, list[str]]
) -> tuple[int, int, int, int, int, int]:
    """(right, named proposed groups, named goal groups that started right, named goal groups,
    named goal groups that could have started right, named goal groups of one or two maps).

    "Could have": some proposed group holds mostly that group's maps, so naming the proposal's
    groups perfectly would have started it right; the rest is up to the grouping."""
    final = _final_labels(goal)
    right = proposed = 0
    started, could = set(), set()
    for bucket, members in buckets.items():
        if bucket in (UNSORTED, BOARD_DISCARD) or not members:
            continue
        majority = Counter(final.get(a, UNSORTED) for a in members).most_common(1)[0][0]
        could.add(majority)
        if bucket not in names:
            continue
        proposed += 1
        if majority == f"concept:{names[bucket]}":
            right += 1
            started.add(majority)
    wanted = {b for b in goal if b.startswith("concept:") and goal[b]}
    tiny = sum(len(goal[b]) <= 2 for b in wanted)
    return right, proposed, len(started & wanted), len(wanted), len(could & wanted), tiny


def _replay(
    goals: dict[str, dict[str, dict[str, list[str]]]],
    open_board: Callable[[str, str], tuple[dict, dict]],
    submit: Callable[[str, str, list[dict]], None],
) -> None:
    """Each annotator, boards in category order: open, count drags and names, submit; print."""
    totals: dict[str, list[int]] = {}
    names = [0] * 6
    for who, boards in goals.items():
        unsorted_total = proposal_total = 0
        for index, category in enumerate(sorted(boards)):
            goal = boards[category]
            buckets, proposed_names = open_board(who, category)
            ids = [aid for members in goal.values() for aid in members]
            unsorted = moves_needed({UNSORTED: ids}, goal)
            drags = moves_needed(buckets, goal)
            unsorted_total += unsorted
            proposal_total += drags
            if index >= 2 and who != PARTS_ANNOTATOR:
                for k, v in enumerate(_score_names(buckets, proposed_names, goal)):
                    names[k] += v
            print(
                f"  {who} board {index + 1} {category}: {len(ids)} maps, {unsorted} drags "
                f"from all-unsorted, {drags} from the proposal, "
                f"{len(proposed_names)} groups named"
            )
            submit(who, category, _annotation(goal))
        totals[who] = [unsorted_total, proposal_total]
        saved = 1 - proposal_total / max(unsorted_total, 1)
        print(f"{who}: {proposal_total} drags vs {unsorted_total} all-unsorted", end=" ")
        print(f"({saved:.1%} fewer)")
    people = {w: t for w, t in totals.items() if w != PARTS_ANNOTATOR}
    unsorted_all = sum(t[0] for t in people.values())
    proposal_all = sum(t[1] for t in people.values())
    worst = min(1 - p / max(u, 1) for u, p in people.values())
    print(
        f"drags total: {proposal_all} from the proposal vs {unsorted_all} all-unsorted, "
        f"{1 - proposal_all / unsorted_all:.1%} fewer (goal >= 40%); worst annotator "
        f"{worst:+.1%} (goal: none below 0%)"
    )
    print(
        f"names after each annotator's first two boards: {names[0]}/{names[1]} proposed "
        f"names right ({names[0] / max(names[1], 1):.1%}, goal >= 60%); {names[2]}/{names[3]} "
        f"of their named groups started with their name ({names[2] / max(names[3], 1):.1%}); "
        f"with the proposal's groups named perfectly {names[4]}/{names[3]} "
        f"({names[4] / max(names[3], 1):.1%}); {names[5]} of those groups hold one or two maps"
    )
    if PARTS_ANNOTATOR in totals:
        u, p = totals[PARTS_ANNOTATOR]
        print(f"fixed grouping by part: {p} vs {u}, {1 - p / u:.1%} fewer (goal >= 70%)")


def bench_offline(root: Path, bundle: Path, namings: pd.DataFrame, data: Path | None) -> None:
    """The same replay without Label Studio: the backend's own predict and webhook, in-process,
    on the task data publish makes (the second figure; minutes instead of a quarter hour)."""
    from ls_backend.backend import learner
    from ls_backend.backend.app import Backend, BackendSettings
    from tests.ls_backend.backend.fake_label_studio import FakeLabelStudio

    goals = _goal_boards(namings)
    if data is not None:
        goals[PARTS_ANNOTATOR] = _part_goals(bundle, data)
    table = load_bundle(bundle)
    # The backend reads tasks and annotations back from Label Studio: here an in-memory one,
    # one project per annotator.
    label_studio = FakeLabelStudio()
    learner.SETTLE_SECONDS = 0.0  # one submit at a time: refit at once
    backend = Backend(BackendSettings(state_dir=root / "offline"), label_studio=label_studio)
    tasks: dict[str, dict[str, dict]] = {}
    for project, who in enumerate(goals, start=1):
        made = board_tasks(table, bundle, files_root=bundle.parent, annotator=f"{who}@example.org")
        for number, task in enumerate(made):
            task = {"id": project * 100_000 + number, "data": task["data"]}
            label_studio.add_task(task, project=project)
            tasks.setdefault(who, {})[task["data"]["category"]] = task

    def open_board(who: str, category: str) -> tuple[dict, dict]:
        task = tasks[who][category]
        project = label_studio.tasks[task["id"]].project
        (answer,) = backend.predict({"tasks": [task], "project": project})["results"]
        return _read_prediction({"id": 1, "predictions": [{**answer[0], "id": 1}]})

    def submit(who: str, category: str, result: list[dict]) -> None:
        event = len(label_studio.annotations) + 1
        label_studio.annotate(event, tasks[who][category], result)
        body = {
            "action": "ANNOTATION_CREATED",
            "annotation": {"id": event, "project": 1, "result": result},
            "task": tasks[who][category],
            "project": {"id": 1},
        }
        backend.webhook(body)
        backend.wait_idle(300)

    _replay(goals, open_board, submit)


def bench_through_label_studio(
    root: Path, bundle: Path, namings: pd.DataFrame, data: Path | None
) -> None:
    goals = _goal_boards(namings)
    if data is not None:
        goals[PARTS_ANNOTATOR] = _part_goals(bundle, data)
    emails = {who: f"{who}@example.org" for who in goals}
    server = LabelStudioServer(
        root / "data", port=free_port(), files_root=bundle.parent, backend_port=free_port()
    )
    started = time.perf_counter()
    credentials = server.start()
    print(f"Label Studio and the backend up in {time.perf_counter() - started:.0f} s")
    try:
        passwords: dict[str, str] = {}
        started = time.perf_counter()
        published = publish(
            bundle,
            list(emails.values()),
            url=credentials.url,
            token=credentials.token,
            files_root=bundle.parent,
            backend_url=credentials.backend_url,
            backend_auth=credentials.backend_auth,
            passwords=passwords,
            progress=lambda line: None,
        )
        print(f"published {len(published)} projects in {time.perf_counter() - started:.0f} s")
        project_of = {p.annotator: p.project_id for p in published}
        annotators: dict[str, tuple[AnnotatorHands, dict[str, dict]]] = {}

        def board_of(who: str, category: str) -> tuple[AnnotatorHands, dict]:
            """The annotator's hands and their board of ``category`` (as Label Studio lists it)."""
            email = emails[who]
            if who not in annotators:
                hands = AnnotatorHands(credentials.url, email, passwords[email])
                listed = hands.session.get(
                    f"{credentials.url}/api/tasks/",
                    params={"project": project_of[email], "page_size": 1000, "fields": "all"},
                    timeout=120,
                )
                listed.raise_for_status()
                tasks = {t["data"]["category"]: t for t in listed.json()["tasks"]}
                annotators[who] = (hands, tasks)
            hands, tasks = annotators[who]
            return hands, tasks[category]

        def open_board(who: str, category: str) -> tuple[dict, dict]:
            # Open the board as the labeling UI does: Label Studio asks the backend now.
            hands, task = board_of(who, category)
            opened = hands.session.get(f"{credentials.url}/api/tasks/{task['id']}/", timeout=120)
            opened.raise_for_status()
            return _read_prediction(opened.json())

        store = root / "data" / "backend" / "namings.sqlite3"

        def submit(who: str, category: str, result: list[dict]) -> None:
            hands, task = board_of(who, category)
            annotation = hands.submit(task["id"], result)
            wait_learned(credentials.backend_url, store, {annotation})

        # /predict is timed on the largest board of the annotator with the most namings, once
        # before they sorted anything and again after the replay taught the backend.
        people = [w for w in goals if w != PARTS_ANNOTATOR] or list(goals)
        speed = max(people, key=lambda w: sum(_maps_of(b) for b in goals[w].values()))
        category = max(goals[speed], key=lambda c: _maps_of(goals[speed][c]))
        _, task = board_of(speed, category)
        project = project_of[emails[speed]]
        predict = partial(
            _predict, credentials.backend_url, credentials.backend_auth, task, project
        )
        _, before = predict()
        _replay(goals, open_board, submit)
        namings = sum(_maps_of(b) for b in goals[speed].values())
        bench_predict(predict, before, who=speed, namings=namings)
    finally:
        server.stop()


def _maps_of(board: dict[str, list[str]]) -> int:
    return sum(len(ids) for ids in board.values())


def _predict(
    backend_url: str, auth: tuple[str, str] | None, task: dict, project: int
) -> tuple[float, list]:
    """One ``/predict`` of ``task`` as Label Studio asks it: seconds and the task's predictions."""
    started = time.perf_counter()
    answer = requests.post(
        f"{backend_url}/predict", json=predict_body([task], project), auth=auth, timeout=60
    )
    took = time.perf_counter() - started
    answer.raise_for_status()
    return took, answer.json()["results"][0]


def bench_predict(
    predict: Callable[[], tuple[float, list]], before: list, *, who: str, namings: int
) -> None:
    """p50/p95 of ``predict`` (a board of ``who``, after the replay taught the backend their
    ``namings``) over 100 calls; checks that each answer proposes and that learning changed it."""
    times, answer = [], []
    for _ in range(100):
        took, answer = predict()
        if not answer:
            raise RuntimeError(f"/predict proposed nothing for a board of {who}")
        times.append(took)
    named = sum(1 for r in answer[0]["result"] if r["type"] == "textarea")
    maps = sum(
        len(v)
        for r in answer[0]["result"]
        if r["type"] == "ranker"
        for v in r["value"]["ranker"].values()
    )
    changed = answer != before
    print(
        f"predict: {maps}-map board of {who}, {namings} earlier namings: p50 "
        f"{1000 * percentile(times, 50):.1f} ms, p95 {1000 * percentile(times, 95):.1f} ms over "
        f"100 calls ({named} groups named; proposal changed by learning: {changed}) "
        "(goal p50 < 100 ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", type=Path, required=True, help="a bundle with embeddings")
    parser.add_argument("--namings", type=Path, required=True, help="xnaming simulate's table")
    parser.add_argument("--data", type=Path, help="its toybirds data: adds the grouping by part")
    parser.add_argument("--annotators", nargs="*", help="only these simulated annotators")
    parser.add_argument(
        "--offline", action="store_true", help="replay through the backend only, no Label Studio"
    )
    args = parser.parse_args()
    namings = pd.read_csv(args.namings, keep_default_na=False, dtype=str)
    if args.annotators:
        namings = namings[namings["annotator"].isin(args.annotators)]
    with tempfile.TemporaryDirectory(prefix="xnaming-bench-") as tmp:
        run = bench_offline if args.offline else bench_through_label_studio
        run(Path(tmp), args.bundle.resolve(), namings, args.data)


if __name__ == "__main__":
    main()
