"""Benchmarks of the Label Studio stage; prints its figures.

    .venv/bin/python bench/bench_label_studio.py            # everything (about 10 minutes)
    .venv/bin/python bench/bench_label_studio.py --only moves

Figures:
- publish: 10,000 per-map tasks (5 annotators x 2,000 maps) into a fresh local Label Studio with
  the ML backend connected, through ``ls_backend.manager.publish.publish`` (goal: under 60 s);
- predict: /predict of one 200-map board on the running backend (gunicorn), asked as Label
  Studio asks it (a real task's id and project, the backend's secret), p50 and p95 over 100
  calls, after its annotator named ``--history`` maps (default 200) in their per-map project
  and sorted nine 200-map boards (2,000 namings by default), all through Label Studio as the
  labeling UI does (goal: p50 under 100 ms; it also checks that every answer proposes and that
  learning changed the proposal);
  the same board 100 times at once, and another annotator's board with no history (p50, p95,
  errors; goal: no error); a 2,000-map board (the largest answered) and a 20,000-map one
  (answered 413: how fast);
- webhook: answer time of Label Studio's ANNOTATION_CREATED events of those real annotations,
  per-map and 200-map board (goal: under 100 ms); the backend reads each back from Label Studio;
- moves: map drags needed to reach a fixed grouping from the backend's proposal vs from an
  all-unsorted board (goal: at least 50% fewer). By default the grouping is a hand-made bundle's
  ``part`` column; with ``--bundle B --namings N`` it is each simulated annotator's board on a
  real toybirds bundle (``xnaming simulate``), e.g. the demo's:
  ``--only moves --bundle runs/demo/bundle --namings runs/demo/namings-simulated.csv``; with
  ``--bundle B --data D`` it is a fixed grouping: each map under the toybirds part that holds
  most of its visible heat. Each annotator's boards are replayed in category order, so the
  proposal learns from their earlier boards only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pandas as pd
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from label_config import (
    BOARD_DISCARD,
    DEFAULT_GROUPS,
    DISCARDED,
    NAMED,
    UNNAMED,
    UNSORTED,
)
from ls_backend.backend.naming import DESCRIPTORS, MapInfo, Naming, board_proposal, moves_needed
from ls_backend.manager.publish import load_bundle
from tests.ls_backend.bundle_factory import make_bundle, read_parts
from tests.ls_backend.helpers import taxonomy


def _goals_from_parts(bundle: Path) -> list[tuple[str, str, dict[str, list[str]]]]:
    """One goal board per category: the part of each map of the hand-made bundle."""
    table = load_bundle(bundle).merge(read_parts(bundle), on="activation_id")
    return [
        (
            category,
            "parts",
            {f"g_{part}": list(m["activation_id"]) for part, m in rows.groupby("part")},
        )
        for category, rows in table.groupby("category")
    ]


def _goals_from_namings(namings: pd.DataFrame) -> list[tuple[str, str, dict[str, list[str]]]]:
    """One goal board per simulated annotator and category: their groups, discards, unsorted."""
    goals = []
    for (annotator, category), rows in namings.groupby(["annotator", "category"]):
        board: dict[str, list[str]] = {UNSORTED: [], BOARD_DISCARD: []}
        for row in rows.itertuples():
            where = {NAMED: f"g_{row.concept}", DISCARDED: BOARD_DISCARD}
            bucket = where.get(row.status, UNSORTED)
            board.setdefault(bucket, []).append(row.activation_id)
        goals.append((category, annotator, board))
    return goals


def _goals_from_hot_spots(bundle: Path, data: Path) -> list[tuple[str, str, dict[str, list]]]:
    """One goal board per category: each map grouped by the toybirds part under most of its
    visible heat (:func:`xnn_training.maps.part_masks.part_heat_table`), background maps
    discarded."""
    from xnn_training.maps.part_masks import BACKGROUND, part_heat_table

    shares = part_heat_table(bundle, data).sort_values("share", ascending=False)
    strongest = shares.drop_duplicates("activation_id")
    goals = []
    for category, rows in strongest.groupby("category"):
        board: dict[str, list[str]] = {UNSORTED: [], BOARD_DISCARD: []}
        for row in rows.itertuples():
            bucket = BOARD_DISCARD if row.part == BACKGROUND else f"g_{row.part}"
            board.setdefault(bucket, []).append(row.activation_id)
        goals.append((category, "hot-spot parts", board))
    return goals


def _map_infos(table: pd.DataFrame) -> dict[str, MapInfo]:
    return {
        r.activation_id: MapInfo(
            r.activation_id,
            r.category,
            int(r.x_feature),
            (r.heat_x, r.heat_y),
            tuple(float(getattr(r, name)) for name in DESCRIPTORS),
        )
        for r in table.itertuples()
    }


def _namings_of_board(board: dict[str, list[str]], maps: dict[str, MapInfo]) -> list[Naming]:
    """What an annotator who sorted a board this way told the backend."""
    namings = []
    for bucket, ids in board.items():
        status = {UNSORTED: UNNAMED, BOARD_DISCARD: DISCARDED}.get(bucket, NAMED)
        concept = bucket.removeprefix("g_") if status == NAMED else ""
        namings += [Naming(maps[aid], concept, status) for aid in ids]
    return namings


def bench_moves(
    root: Path, bundle: Path | None = None, namings: Path | None = None, data: Path | None = None
) -> None:
    """Drags to each goal board from the proposal, with and without the annotator's history.

    Each annotator's boards are replayed in category order: the proposal for a board learns
    from that annotator's earlier boards only, as the backend would see them.
    """
    if bundle is None:
        bundle = make_bundle(
            root / "moves", categories=("cardinal", "jay", "finch"), images_per_category=30
        )
    table = load_bundle(bundle)
    maps = _map_infos(table)
    if namings is not None:
        goals = _goals_from_namings(pd.read_csv(namings, keep_default_na=False, dtype=str))
    elif data is not None:
        goals = _goals_from_hot_spots(bundle, data)
    else:
        goals = _goals_from_parts(bundle)
    ids_of = {c: list(rows["activation_id"]) for c, rows in table.groupby("category")}
    totals = {"unsorted": 0, "fresh": 0, "history": 0}
    history: dict[str, list[Naming]] = {}
    for category, who, goal in sorted(goals, key=lambda g: (g[1], g[0])):
        ids = ids_of[category]
        board = [maps[aid] for aid in ids]
        earlier = history.setdefault(who, [])
        moves = {
            "unsorted": moves_needed({UNSORTED: ids}, goal),
            "fresh": moves_needed(board_proposal(board, [], groups=DEFAULT_GROUPS)[0], goal),
            "history": moves_needed(board_proposal(board, earlier, groups=DEFAULT_GROUPS)[0], goal),
        }
        for key, value in moves.items():
            totals[key] += value
        print(
            f"moves {category} ({who}, {len(earlier)} earlier namings): {len(ids)} maps, "
            f"{moves['unsorted']} from all-unsorted, {moves['fresh']} from the proposal "
            f"without history, {moves['history']} with history"
        )
        earlier += _namings_of_board(goal, maps)

    def fewer(key: str) -> str:
        return f"{totals[key]} ({1 - totals[key] / totals['unsorted']:.1%} fewer)"

    print(
        f"moves total: {totals['unsorted']} from all-unsorted; from the proposal "
        f"{fewer('fresh')} without history, {fewer('history')} with the annotator's history "
        "(goal: at least 50% fewer)"
    )


def _named_groups(results: list) -> int:
    """How many groups the first task's prediction names."""
    if not results or not results[0]:
        return 0
    return sum(1 for r in results[0][0]["result"] if r["type"] == "textarea")


def bench_server(root: Path, *, history: int = 200) -> None:
    from bench._live import (
        AnnotatorHands,
        board_sorted_by_part,
        percentile,
        predict_body,
        project_tasks,
        wait_learned,
        webhook_event,
    )
    from ls_backend.manager.client import Manager
    from ls_backend.manager.publish import publish
    from ls_backend.server import LabelStudioServer, free_port

    # The figures are CPU-bound (2 cores in CI): say how busy the machine was.
    print(f"load average (1 min) at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    files = root / "files"
    started = time.perf_counter()
    # 10 categories x 50 images x 4 X-features = 2,000 maps.
    categories = tuple(f"bird{i:02d}" for i in range(10))
    bundle = make_bundle(
        files / "bundle", categories=categories, images_per_category=50, features=5
    )
    table = load_bundle(bundle).merge(read_parts(bundle), on="activation_id")
    parts = table.set_index("activation_id")["part"]
    # The same maps on one board: the largest board /predict answers.
    one_board = make_bundle(
        files / "one-board", categories=("allbirds",), images_per_category=500, features=5
    )
    print(f"bundle: {len(table)} maps made in {time.perf_counter() - started:.1f} s")
    port, backend_port = free_port(), free_port()
    server = LabelStudioServer(
        root / "data", port=port, files_root=files, backend_port=backend_port
    )
    started = time.perf_counter()
    credentials = server.start()
    print(f"ls start (first run, init included): {time.perf_counter() - started:.1f} s")
    try:
        annotators = [f"bench{i}@example.org" for i in range(5)]
        passwords: dict[str, str] = {}
        publish_to = partial(
            publish,
            url=credentials.url,
            token=credentials.token,
            files_root=files,
            backend_url=credentials.backend_url,
            backend_auth=credentials.backend_auth,
            passwords=passwords,
            progress=lambda line: None,
        )
        started = time.perf_counter()
        per_map = publish_to(bundle, annotators, mode="per-map")
        took = time.perf_counter() - started
        print(
            f"publish: {5 * len(table)} per-map tasks for 5 annotators "
            f"in {took:.1f} s (goal < 60 s)"
        )
        started = time.perf_counter()
        publish_to(bundle, annotators, mode="per-map")
        print(f"publish again (nothing to add): {time.perf_counter() - started:.1f} s")
        # bench0 names and sorts; bench1 has boards and no history.
        boards = publish_to(bundle, annotators[:2], mode="board")
        publish_to(one_board, annotators[:1], mode="board")

        manager = Manager(credentials.url, credentials.token)
        backend, auth = credentials.backend_url, credentials.backend_auth
        store = root / "data" / "backend" / "namings.sqlite3"
        per_map_project = per_map[0].project_id
        board_project, fresh_project = boards[0].project_id, boards[1].project_id
        board_of = {t["data"]["category"]: t for t in project_tasks(manager, board_project)}
        task, largest = board_of["bird00"], board_of["allbirds"]
        (fresh,) = [
            t for t in project_tasks(manager, fresh_project) if t["data"]["category"] == "bird00"
        ]

        def predict(tasks: list[dict], project: int = board_project):
            t0 = time.perf_counter()
            answer = requests.post(
                f"{backend}/predict", json=predict_body(tasks, project), auth=auth, timeout=120
            )
            return time.perf_counter() - t0, answer

        def timed_webhook(event: dict) -> float:
            t0 = time.perf_counter()
            answer = requests.post(f"{backend}/webhook", json=event, auth=auth, timeout=30)
            took = time.perf_counter() - t0
            assert answer.status_code == 200, answer.text[:300]
            return took

        wait_learned(backend, store)
        _, cold = predict([task])
        assert cold.status_code == 200, cold.text[:300]
        assert cold.json()["results"][0], "no proposal for a task Label Studio holds"

        # History: bench0 names `history` maps in their per-map project, as the labeling UI
        # does; Label Studio sends each annotation to the backend's webhook itself.
        hands = AnnotatorHands(credentials.url, annotators[0], passwords[annotators[0]])
        per_map_tasks = project_tasks(manager, per_map_project)[:history]
        made: dict[int, dict] = {}
        submit_times = []
        started = time.perf_counter()
        for t in per_map_tasks:
            t0 = time.perf_counter()
            made[hands.submit(t["id"], taxonomy(parts[t["data"]["activation_id"]]))] = t
            submit_times.append(time.perf_counter() - t0)
        print(
            f"history: {len(made)} per-map annotations by {annotators[0]} in "
            f"{time.perf_counter() - started:.1f} s (submit p50 "
            f"{1000 * percentile(submit_times, 50):.0f} ms, Label Studio's webhook call included)"
        )
        # The boards but the predicted one, each sorted by part.
        board_made: dict[int, dict] = {}
        board_submit_times = []
        for category in categories[1:]:
            t0 = time.perf_counter()
            board = board_of[category]
            board_made[hands.submit(board["id"], board_sorted_by_part(board, parts))] = board
            board_submit_times.append(time.perf_counter() - t0)
        learned = wait_learned(backend, store, set(made) | set(board_made))
        namings = len(made) + sum(len(b["data"]["activations"]) for b in board_made.values())
        print(f"the backend held them all and finished learning {learned:.1f} s after the last")

        # The webhook's answer to Label Studio's own events of those annotations (read back
        # from Label Studio as the manager); the learner reads each annotation back again.
        hook_times = [
            timed_webhook(webhook_event(manager, a, t, per_map_project))
            for a, t in list(made.items())[:200]
        ]
        board_events = [webhook_event(manager, a, t, board_project) for a, t in board_made.items()]
        board_hook_times = [timed_webhook(e) for _ in range(5) for e in board_events]
        wait_learned(backend, store)

        predict_times = []
        for _ in range(100):
            took, answer = predict([task])
            assert answer.status_code == 200, answer.text
            assert answer.json()["results"][0], "no proposal for a task Label Studio holds"
            predict_times.append(took)
        learned_answer = answer.json()["results"]
        named = _named_groups(learned_answer)
        changed = learned_answer != cold.json()["results"]

        def concurrently(board: dict, project: int) -> tuple[list[float], int, float]:
            """100 calls at once: the answer times of those that succeeded, errors, wall time."""
            start = threading.Barrier(100)

            def call(_: int) -> tuple[float, bool]:
                start.wait()
                try:
                    took, answer = predict([board], project)
                except requests.RequestException:
                    return float("nan"), False
                return took, answer.status_code == 200 and bool(answer.json()["results"][0])

            with ThreadPoolExecutor(max_workers=100) as pool:
                t0 = time.perf_counter()
                calls = list(pool.map(call, range(100)))
                wall = time.perf_counter() - t0
            return [t for t, ok in calls if ok], sum(1 for _, ok in calls if not ok), wall

        concurrent = {
            f"{namings:,} earlier namings": concurrently(task, board_project),
            "no history": concurrently(fresh, fresh_project),
        }

        # The biggest board answered (every map of the bundle on one board), and one ten
        # times bigger: its maps repeated under new ids (refused for its size, unread).
        data = largest["data"]
        huge = {"id": largest["id"], "data": dict(data)}
        huge["data"]["activations"] = [
            a | {"activation_id": f"{a['activation_id']}#{k}"}
            for k in range(10)
            for a in data["activations"]
        ]
        huge["data"]["items"] = [
            i | {"id": f"{i['id']}#{k}"} for k in range(10) for i in data["items"]
        ]
        largest_times, huge_times = [], []
        for _ in range(10):
            took, answer = predict([largest])
            assert answer.status_code == 200, answer.text
            assert answer.json()["results"][0], "no proposal for the largest board"
            largest_times.append(took)
            took, answer = predict([huge])
            assert answer.status_code == 413, answer.text
            huge_times.append(took)
        huge_mb = len(json.dumps({"tasks": [huge]})) / 1e6

        def ms(values, q):
            return 1000 * percentile(values, q)

        print(
            f"predict: {len(task['data']['activations'])}-map board, {namings:,} earlier namings "
            f"({len(made)} per-map and {len(board_made)} board annotations): "
            f"p50 {ms(predict_times, 50):.1f} ms, p95 {ms(predict_times, 95):.1f} ms over 100 "
            f"calls ({named} groups named from history, proposal changed by learning: {changed}) "
            "(goal p50 < 100 ms)"
        )
        for what, (times, errors, wall) in concurrent.items():
            print(
                f"predict, 100 concurrent calls (200-map board, {what}): "
                f"p50 {ms(times, 50):.0f} ms, p95 {ms(times, 95):.0f} ms, "
                f"{errors} errors, all answered in {wall:.1f} s (goal: no error)"
            )
        print(
            f"predict: {len(data['activations']):,}-map board (the largest answered) p50 "
            f"{ms(largest_times, 50):.0f} ms; {len(huge['data']['activations']):,}-map board "
            f"({huge_mb:.1f} MB) answered 413 in p50 {ms(huge_times, 50):.0f} ms, "
            f"max {1000 * max(huge_times):.0f} ms over 10 calls"
        )
        print(
            f"webhook (Label Studio's events of real annotations): per-map p50 "
            f"{ms(hook_times, 50):.1f} ms, max {1000 * max(hook_times):.1f} ms over "
            f"{len(hook_times):,}; 200-map board p50 {ms(board_hook_times, 50):.1f} ms, "
            f"p95 {ms(board_hook_times, 95):.1f} ms, max {1000 * max(board_hook_times):.1f} ms "
            f"over {len(board_hook_times)} (goal < 100 ms)"
        )
        print(
            f"board submit as the annotator (Label Studio's webhook call included): p50 "
            f"{ms(board_submit_times, 50):.0f} ms, max {1000 * max(board_submit_times):.0f} ms "
            f"over {len(board_submit_times)}"
        )
        print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f}")
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=("moves", "server"))
    parser.add_argument(
        "--history",
        type=int,
        default=200,
        help="server: maps the timed annotator names one by one in Label Studio before sorting "
        "nine 200-map boards (default 200: 2,000 namings in all)",
    )
    parser.add_argument("--bundle", type=Path, help="moves on this bundle (with --namings)")
    parser.add_argument("--namings", type=Path, help="simulated namings: the goal boards")
    parser.add_argument(
        "--data", type=Path, help="toybirds data of --bundle: goal = the part under each hot spot"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xnaming-bench-") as tmp:
        if args.only in (None, "moves"):
            bench_moves(Path(tmp), args.bundle, args.namings, args.data)
        if args.only in (None, "server"):
            bench_server(Path(tmp), history=args.history)


if __name__ == "__main__":
    main()
