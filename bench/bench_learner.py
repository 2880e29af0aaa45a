"""Benchmark of the backend's learner under a burst of submits; prints its figures.

    .venv/bin/python bench/bench_learner.py                 # about 3 minutes
    .venv/bin/python bench/bench_learner.py --submits 20 --seconds 10 --images 12

A fresh local Label Studio with the ML backend (``xnaming ls start``'s code) serves one annotator
a bundle with map embeddings (hand-made, ``--submits`` + 1 categories). The annotator submits one
board a category, ``--submits`` of them spread over ``--seconds`` (sorted by part, groups named),
through Label Studio's API as the labeling UI does; meanwhile one client asks ``/predict`` for the
last board again and again. Figures:

- how long until the model includes them: from the last submit until the backend holds every
  annotation and its learner is idle (the refit done), and how many refits it made (its log);
- ``/predict`` while learning: p50, p95 and the slowest call, from the first submit until then
  (goal: p95 well under a second; a predict never waits for a fit).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._live import board_sorted_by_part, held, refits
from tests.ls_backend.bundle_factory import make_bundle, read_parts

ANNOTATOR = "learner@example.org"


def bench(root: Path, *, submits: int, seconds: float, images: int) -> None:
    from ls_backend.manager.client import Manager
    from ls_backend.manager.projects import ProjectBook
    from ls_backend.server import LabelStudioServer, free_port, login_session
    from xnaming.cli import main as xnaming

    print(f"load average (1 min) at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    files = root / "files"
    categories = tuple(f"bird{i:02d}" for i in range(submits + 1))
    bundle = make_bundle(
        files / "bundle", categories=categories, images_per_category=images, embeddings=True
    )
    parts = read_parts(bundle).set_index("activation_id")["part"]
    server = LabelStudioServer(
        root / "data", port=free_port(), files_root=files, backend_port=free_port()
    )
    credentials = server.start()
    try:
        data_dir = ["--data-dir", str(root / "data")]
        assert xnaming(["publish", str(bundle), "--annotators", ANNOTATOR, *data_dir]) == 0
        manager = Manager(credentials.url, credentials.token)
        (annotator,) = [a for a in manager.annotators() if a.email == ANNOTATOR]
        (project,) = [p["id"] for p in annotator.projects]
        path = f"/api/projects/{project}/export?export_type=JSON&download_all_tasks=true"
        tasks = {t["data"]["category"]: t for t in manager.request("GET", path).json()}
        maps = len(tasks[categories[0]]["data"]["activations"])
        print(f"{len(tasks)} boards of {maps} maps published to {ANNOTATOR}")
        backend, auth = credentials.backend_url, credentials.backend_auth
        last = tasks[categories[-1]]
        body = {"tasks": [{"id": last["id"], "data": last["data"]}], "project": project}

        def idle() -> bool:
            return not requests.get(f"{backend}/health", timeout=30).json()["learning"]

        while not idle():  # the start-up resync
            time.sleep(0.2)
        latencies: list[float] = []
        stop = threading.Event()

        def ask() -> None:
            with requests.Session() as session:
                session.auth = auth
                while not stop.is_set():
                    started = time.perf_counter()
                    answer = session.post(f"{backend}/predict", json=body, timeout=120)
                    answer.raise_for_status()
                    latencies.append(time.perf_counter() - started)

        book = ProjectBook.in_data_dir(root / "data").passwords(credentials.url)
        password = (credentials.annotators | book)[ANNOTATOR]
        session = login_session(credentials.url, ANNOTATOR, password)
        headers = {"X-CSRFToken": session.cookies.get("csrftoken", ""), "Referer": credentials.url}
        asker = threading.Thread(target=ask)
        refits_before = refits(root / "data" / "backend.log")
        asker.start()
        first = time.perf_counter()
        made = []
        for number, category in enumerate(categories[:-1]):
            time.sleep(max(0.0, first + number * seconds / submits - time.perf_counter()))
            answer = session.post(
                f"{credentials.url}/api/tasks/{tasks[category]['id']}/annotations/",
                json={"result": board_sorted_by_part(tasks[category], parts)},
                headers=headers,
                timeout=60,
            )
            answer.raise_for_status()
            made.append(answer.json()["id"])
        submitted = time.perf_counter()
        store = root / "data" / "backend" / "namings.sqlite3"
        while not (set(made) <= held(store) and idle()):
            time.sleep(0.05)
        included = time.perf_counter()
        stop.set()
        asker.join()
        made_refits = refits(root / "data" / "backend.log") - refits_before
        during = sorted(latencies)
        print(
            f"{submits} submits in {submitted - first:.1f} s; the model included them "
            f"{included - submitted:.1f} s after the last ({included - first:.1f} s after the "
            f"first), in {made_refits} refits"
        )
        print(
            f"/predict of a {maps}-map board meanwhile: {len(during)} calls, "
            f"p50 {1000 * statistics.median(during):.0f} ms, "
            f"p95 {1000 * during[int(0.95 * (len(during) - 1))]:.0f} ms, "
            f"slowest {1000 * during[-1]:.0f} ms"
        )
        print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f}")
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--submits", type=int, default=20, help="boards submitted (default 20)")
    parser.add_argument("--seconds", type=float, default=10, help="over how long (default 10)")
    parser.add_argument("--images", type=int, default=12, help="images per category (default 12)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xnaming-bench-") as tmp:
        bench(Path(tmp), submits=args.submits, seconds=args.seconds, images=args.images)


if __name__ == "__main__":
    main()
