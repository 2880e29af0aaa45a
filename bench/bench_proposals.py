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
- predict: /predict of a 200-map board on the running backend with 2,000 earlier namings of
  that annotator, p50 and p95 over 100 calls (goal: p50 under 100 ms).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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
from ls_backend.server import LabelStudioServer, free_port, login_session

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


def _wait_learned(backend_url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not requests.get(f"{backend_url}/health", timeout=10).json().get("learning", False):
            return
        time.sleep(0.05)
    raise TimeoutError(f"the backend at {backend_url} did not finish learning in {timeout} s")


def _csrf(session: requests.Session, url: str) -> dict[str, str]:
    return {"X-CSRFToken": session.cookies.get("csrftoken", ""), "Referer": url}


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
        sessions: dict[str, tuple[requests.Session, dict[str, int]]] = {}

        def board_of(who: str, category: str) -> tuple[requests.Session, int]:
            email = emails[who]
            if who not in sessions:
                session = login_session(credentials.url, email, passwords[email])
                listed = session.get(
                    f"{credentials.url}/api/tasks/",
                    params={"project": project_of[email], "page_size": 1000, "fields": "all"},
                    timeout=120,
                )
                listed.raise_for_status()
                tasks = {t["data"]["category"]: t["id"] for t in listed.json()["tasks"]}
                sessions[who] = (session, tasks)
            session, tasks = sessions[who]
            return session, tasks[category]

        def open_board(who: str, category: str) -> tuple[dict, dict]:
            # Open the board as the labeling UI does: Label Studio asks the backend now.
            session, task = board_of(who, category)
            opened = session.get(f"{credentials.url}/api/tasks/{task}/", timeout=120)
            opened.raise_for_status()
            return _read_prediction(opened.json())

        def submit(who: str, category: str, result: list[dict]) -> None:
            session, task = board_of(who, category)
            answer = session.post(
                f"{credentials.url}/api/tasks/{task}/annotations/",
                json={"result": result, "lead_time": 1.0},
                headers=_csrf(session, credentials.url),
                timeout=120,
            )
            if answer.status_code != 201:
                raise RuntimeError(f"submit failed: {answer.status_code} {answer.text[:300]}")
            _wait_learned(credentials.backend_url)

        _replay(goals, open_board, submit)
        bench_predict(credentials.backend_url, bundle, root)
    finally:
        server.stop()


def bench_predict(backend_url: str, bundle: Path, root: Path) -> None:
    """p50/p95 of /predict for a 200-map board with 2,000 earlier namings of its annotator."""
    table = load_bundle(bundle)
    who = "speed@example.org"
    tasks = board_tasks(table, bundle, files_root=bundle.parent, annotator=who)
    rows = [(len(t["data"]["activations"]), t) for t in tasks]
    namings, event = 0, 0
    # Earlier namings: every board sorted (map i of a board into group i % 4), over and over.
    while namings < 2000:
        for _, task in rows:
            ids = [a["activation_id"] for a in task["data"]["activations"]]
            buckets = {UNSORTED: ids[0::5], BOARD_DISCARD: ids[1::25]}
            rest = [a for a in ids if a not in set(buckets[UNSORTED]) | set(buckets[BOARD_DISCARD])]
            regions = []
            for g in range(4):
                buckets[group_bucket(g + 1)] = rest[g::4]
                regions.append(group_name_region(g + 1, f"concept {g}"))
            body = {
                "action": "ANNOTATION_CREATED",
                "annotation": {
                    "id": 90_000_000 + event,
                    "project": 999,
                    "was_cancelled": False,
                    "result": [ranker_region(buckets), *regions],
                },
                "task": {"id": 90_000_000 + event, "data": task["data"]},
                "project": {"id": 999},
            }
            assert requests.post(f"{backend_url}/webhook", json=body, timeout=30).ok
            event += 1
            namings += len(ids)
            if namings >= 2000:
                break
    _wait_learned(backend_url, timeout=300)
    board = {**rows[0][1]["data"]}
    activations = [a for _, t in rows for a in t["data"]["activations"]][:200]
    board["activations"] = activations
    board["items"] = [{"id": a["activation_id"], "html": ""} for a in activations]
    times = []
    for _ in range(100):
        t0 = time.perf_counter()
        answer = requests.post(
            f"{backend_url}/predict", json={"tasks": [{"id": 1, "data": board}]}, timeout=60
        )
        times.append(time.perf_counter() - t0)
        answer.raise_for_status()
    q = statistics.quantiles(times, n=100)
    print(
        f"predict: {len(activations)}-map board, {namings} earlier namings: p50 "
        f"{1000 * q[49]:.1f} ms, p95 {1000 * q[94]:.1f} ms (goal p50 < 100 ms)"
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
