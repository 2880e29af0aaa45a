"""Benchmarks of the Label Studio stage; prints its figures.

    .venv/bin/python bench/bench_label_studio.py            # everything (about 3 minutes)
    .venv/bin/python bench/bench_label_studio.py --only moves

Figures:
- publish: 10,000 per-map tasks (5 annotators x 2,000 maps) into a fresh local Label Studio with
  the ML backend connected, through ``ls_backend.manager.publish.publish`` (goal: under 60 s);
- predict: /predict of one 200-map board on the running backend (gunicorn), p50 and p95 over
  100 calls, with 2,000 earlier namings of that annotator in its store (goal: p50 under
  100 ms); the same board 100 times at once (p50, p95, errors; goal: no error); a 2,000-map
  board (the largest answered) and a 20,000-map one (answered 413: how fast);
- webhook: answer time of ANNOTATION_CREATED for a per-map task and a 200-map board (goal:
  under 100 ms);
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
import statistics
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
    group_bucket,
)
from ls_backend.backend.naming import DESCRIPTORS, MapInfo, Naming, board_proposal, moves_needed
from ls_backend.manager.publish import load_bundle
from tests.ls_backend.bundle_factory import make_bundle, read_parts
from tests.ls_backend.helpers import ranker, taxonomy


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


def bench_server(root: Path) -> None:
    from ls_backend.manager.publish import board_tasks, per_map_tasks, publish
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
        publish_all = partial(
            publish,
            bundle,
            annotators,
            url=credentials.url,
            token=credentials.token,
            files_root=files,
            mode="per-map",
            backend_url=credentials.backend_url,
            backend_auth=credentials.backend_auth,
            progress=lambda line: None,
        )
        started = time.perf_counter()
        publish_all()
        took = time.perf_counter() - started
        print(
            f"publish: {5 * len(table)} per-map tasks for 5 annotators "
            f"in {took:.1f} s (goal < 60 s)"
        )
        started = time.perf_counter()
        publish_all()
        print(f"publish again (nothing to add): {time.perf_counter() - started:.1f} s")

        backend = credentials.backend_url
        files_root = files.resolve()
        (task,) = board_tasks(
            table[table["category"] == "bird00"],
            bundle,
            files_root=files_root,
            annotator="bench0@example.org",
        )
        task["id"] = 1
        # History: 2,000 namings of this annotator (every map of the bundle, each category's
        # board included) arrive as per-map webhooks, as Label Studio sends them.
        history = table.head(2000)
        data_of = {
            t["data"]["activation_id"]: t["data"]
            for t in per_map_tasks(
                history, bundle, files_root=files_root, annotator="bench0@example.org"
            )
        }
        hook_times = []
        for i, row in enumerate(history.itertuples()):
            event = {
                "action": "ANNOTATION_CREATED",
                "annotation": {
                    "id": 10_000_000 + i,
                    "project": 999,
                    "was_cancelled": False,
                    "result": taxonomy(row.part),
                },
                "task": {"id": 10_000_000 + i, "data": data_of[row.activation_id]},
                "project": {"id": 999},
            }
            t0 = time.perf_counter()
            assert requests.post(f"{backend}/webhook", json=event, timeout=10).status_code == 200
            hook_times.append(time.perf_counter() - t0)
        ids = [a["activation_id"] for a in task["data"]["activations"]]
        board_hook = {
            "action": "ANNOTATION_CREATED",
            "annotation": {
                "id": 20_000_000,
                "project": 999,
                "was_cancelled": False,
                "result": ranker({group_bucket(1): ids[:50]}),
            },
            "task": task,
            "project": {"id": 999},
        }
        board_hook_times = []
        for _ in range(50):
            t0 = time.perf_counter()
            assert (
                requests.post(f"{backend}/webhook", json=board_hook, timeout=10).status_code == 200
            )
            board_hook_times.append(time.perf_counter() - t0)
        time.sleep(5)  # let the learner catch up before timing predictions

        def predict(tasks: list[dict]) -> tuple[float, requests.Response]:
            t0 = time.perf_counter()
            answer = requests.post(f"{backend}/predict", json={"tasks": tasks}, timeout=120)
            return time.perf_counter() - t0, answer

        predict_times = []
        for _ in range(100):
            took, answer = predict([task])
            assert answer.status_code == 200, answer.text
            predict_times.append(took)
        named = sum(1 for r in answer.json()["results"][0][0]["result"] if r["type"] == "textarea")

        def concurrently(board: dict) -> tuple[list[float], int, float]:
            """100 calls at once: the answer times of those that succeeded, errors, wall time."""
            start = threading.Barrier(100)

            def call(_: int) -> tuple[float, bool]:
                start.wait()
                try:
                    took, answer = predict([board])
                except requests.RequestException:
                    return float("nan"), False
                return took, answer.status_code == 200 and bool(answer.json()["results"][0])

            with ThreadPoolExecutor(max_workers=100) as pool:
                t0 = time.perf_counter()
                calls = list(pool.map(call, range(100)))
                wall = time.perf_counter() - t0
            return [t for t, ok in calls if ok], sum(1 for _, ok in calls if not ok), wall

        fresh = {"id": 4, "data": task["data"] | {"annotator": "fresh@example.org"}}
        concurrent = {
            "2,000 earlier namings": concurrently(task),
            "no history": concurrently(fresh),
        }

        # The biggest board answered (every map of the bundle on one board), and one ten
        # times bigger: its maps repeated under new ids.
        (largest,) = board_tasks(
            table.assign(category="bird00"),
            bundle,
            files_root=files_root,
            annotator="bench0@example.org",
        )
        largest["id"] = 2
        data = largest["data"]
        huge = {"id": 3, "data": dict(data)}
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
            largest_times.append(took)
            took, answer = predict([huge])
            assert answer.status_code == 413, answer.text
            huge_times.append(took)
        huge_mb = len(json.dumps({"tasks": [huge]})) / 1e6

        def ms(values, q):
            return 1000 * statistics.quantiles(values, n=100)[q - 1]

        print(
            f"predict: 200-map board, 2,000 earlier namings: p50 {ms(predict_times, 50):.1f} ms, "
            f"p95 {ms(predict_times, 95):.1f} ms over 100 calls "
            f"({named} groups named from history) (goal p50 < 100 ms)"
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
            f"webhook: per-map p50 {ms(hook_times, 50):.1f} ms, "
            f"max {1000 * max(hook_times):.1f} ms over {len(hook_times):,}; 200-map board "
            f"p50 {ms(board_hook_times, 50):.1f} ms, p95 {ms(board_hook_times, 95):.1f} ms, "
            f"max {1000 * max(board_hook_times):.1f} ms over 50 (goal < 100 ms)"
        )
        print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f}")
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=("moves", "server"))
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
            bench_server(Path(tmp))


if __name__ == "__main__":
    main()
