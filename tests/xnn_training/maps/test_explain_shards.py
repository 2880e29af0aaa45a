"""Sharded ``xnaming explain``: torchrun ranks (gloo) and ``--workers`` processes, on the CPU.

Real processes throughout: ``torchrun`` and ``xnaming`` are run as a user runs them, ranks are
killed with SIGKILL, and the bundles are compared with the one a single process writes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xnaming.cli import main
from xnn_training import make_toybirds, open_dataset, train_dnn, train_xnn
from xnn_training.bundle.embeddings import read_embeddings
from xnn_training.bundle.io import PARTS, read_bundle
from xnn_training.maps.explain import explain

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
NUMBERS = ["contribution", "share", "score", "dnn_logit"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    data = make_toybirds(root / "data", classes=3, per_class=30, size=32, seed=0)  # 30 test
    dnn = train_dnn(data, root / "dnn", epochs=2, batch_size=8)
    xnn = train_xnn(dnn, root / "xnn", k=3, hidden=(8, 4), epochs=3, batch_size=8)
    reference = explain(dnn, xnn, data, root / "bundles" / "reference", batch_size=2, threads=1)
    return data, dnn, xnn, reference


@pytest.fixture
def out(runs, request):
    """A new bundle directory beside the reference (the manifests name the runs relatively)."""
    return runs[3].parent / request.node.name


def _args(runs, out: Path, *more: str) -> list[str]:
    data, dnn, xnn, _ = runs
    return ["explain", "--dnn", str(dnn), "--xnn", str(xnn), "--data", str(data),
            "--out", str(out), "--threads", "1", *more]  # fmt: skip


def _torchrun(ranks: int, args: list[str]) -> subprocess.Popen:
    command = [str(BIN / "torchrun"), "--standalone", f"--nproc-per-node={ranks}",
               str(BIN / "xnaming"), *args]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finished(process: subprocess.Popen, timeout: float = 180) -> tuple[int, str]:
    out, _ = process.communicate(timeout=timeout)
    return process.returncode, out.decode(errors="replace")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _rank_pid(torchrun: subprocess.Popen, rank: int) -> int:
    """The pid of torchrun's worker ``rank`` (its RANK environment variable)."""
    for pid in _children(torchrun.pid):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ:
            return pid
    raise AssertionError(f"no worker with RANK={rank} under torchrun {torchrun.pid}")


def _rows(path: Path) -> int:
    try:
        return max(0, len(path.read_text().splitlines()) - 1)
    except OSError:
        return 0


def _wait_for_rows(path: Path, process: subprocess.Popen, at_least: int = 1) -> None:
    deadline = time.monotonic() + 120
    while _rows(path) < at_least:
        assert process.poll() is None, _finished(process)[1]
        assert time.monotonic() < deadline, f"{path} got no rows"
        time.sleep(0.005)


def _assert_same_bundle(got: Path, want: Path, *, exact: bool = True) -> None:
    """Same rows in the same order, maps equal within float tolerance, same manifest apart
    from its timestamps (and, with ``exact``, the same bytes in every file)."""
    a, b = read_bundle(got), read_bundle(want)
    for table in ("activations", "images"):
        x, y = getattr(a, table), getattr(b, table)
        numbers = [c for c in NUMBERS if c in x.columns]
        assert x.drop(columns=numbers).equals(y.drop(columns=numbers)), table
        np.testing.assert_allclose(
            x[numbers].astype(float), y[numbers].astype(float), rtol=1e-5, atol=1e-6
        )
    for path in a.activations["map_path"]:
        np.testing.assert_allclose(
            np.load(got / path)["map"], np.load(want / path)["map"], rtol=1e-4, atol=1e-7
        )
    embedded, reference = read_embeddings(a), read_embeddings(b)  # also made by the ranks
    assert embedded.activation_ids == reference.activation_ids
    np.testing.assert_allclose(embedded.values, reference.values, rtol=1e-4, atol=1e-6)
    clocks = ("created", "finished", "files")
    assert {k: v for k, v in a.manifest.items() if k not in clocks} == {
        k: v for k, v in b.manifest.items() if k not in clocks
    }
    assert set(a.manifest["files"]) == set(b.manifest["files"])
    if exact:
        assert a.manifest["files"] == b.manifest["files"]
    assert not (got / PARTS).exists()
    assert not (got / ".lock").exists()


def test_two_torchrun_ranks_write_the_bundle_one_process_writes(runs, out):
    process = _torchrun(2, _args(runs, out, "--batch-size", "2"))
    code, log = _finished(process)
    assert code == 0, log
    _assert_same_bundle(out, runs[3])
    assert log.count("xnaming explain: wrote") == 1  # rank 0 reports, the others are quiet
    assert "explain 1/2" in log  # a progress bar per rank
    assert "explain 2/2" in log


def test_workers_write_the_bundle_one_process_writes(runs, out, capsys):
    assert main(_args(runs, out, "--batch-size", "2", "--workers", "2")) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    _assert_same_bundle(out, runs[3])


def test_more_ranks_than_images(runs, out):
    process = _torchrun(3, _args(runs, out, "--batch-size", "1", "--limit", "2"))
    code, log = _finished(process)
    assert code == 0, log
    content = read_bundle(out)
    reference = read_bundle(runs[3])
    first = reference.images["image_id"].iloc[:2].tolist()
    assert content.images["image_id"].tolist() == first
    expected = reference.activations[reference.activations["image_id"].isin(first)]
    assert content.activations["activation_id"].tolist() == expected["activation_id"].tolist()


def test_a_killed_rank_leaves_what_it_finished_and_a_rerun_completes_it(runs, out):
    process = _torchrun(2, _args(runs, out, "--batch-size", "1"))
    part = out / PARTS / "rank-00001"
    _wait_for_rows(part / "images.csv", process)
    os.kill(_rank_pid(process, 1), signal.SIGKILL)
    code, log = _finished(process)
    assert code != 0, log

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is False
    kept = pd.read_csv(part / "images.csv", dtype=str)
    assert 1 <= len(kept) < 15, "rank 1 was to be killed midway through its 15 images"
    stamps = {path: (out / path).stat().st_mtime_ns for path in kept["image_path"]}

    # The rerun has another number of processes; it finishes the rest and redoes nothing.
    assert main(_args(runs, out, "--batch-size", "1", "--workers", "3")) == 0
    _assert_same_bundle(out, runs[3], exact=False)
    assert {path: (out / path).stat().st_mtime_ns for path in stamps} == stamps
    ids = read_bundle(out).images["image_id"].tolist()
    assert ids == [s.image_id for s in open_dataset(runs[0], "test").samples]


def test_a_killed_worker_then_a_single_process_rerun(runs, out):
    command = [str(BIN / "xnaming"), *_args(runs, out, "--batch-size", "1", "--workers", "2")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _wait_for_rows(out / PARTS / "rank-00000" / "images.csv", process)
    workers = [
        pid
        for pid in _children(process.pid)
        if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    os.kill(workers[0], signal.SIGKILL)
    code, log = _finished(process)
    assert code == 1, log
    assert "ended with signal SIGKILL" in log
    assert "run the same command again" in log
    # The coordinator merged what the workers finished: readable, marked unfinished.
    partial = read_bundle(out, require_complete=False)
    assert 1 <= len(partial.images) < 30
    assert not (out / PARTS).exists()

    explain(runs[1], runs[2], runs[0], out, batch_size=1, threads=1)
    _assert_same_bundle(out, runs[3], exact=False)


def test_workers_die_with_their_coordinator_and_a_rerun_completes(runs, out):
    command = [str(BIN / "xnaming"), *_args(runs, out, "--batch-size", "1", "--workers", "2")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _wait_for_rows(out / PARTS / "rank-00001" / "images.csv", process)
    workers = _children(process.pid)
    os.kill(process.pid, signal.SIGKILL)  # the coordinator, which holds the bundle's lock
    process.wait(30)
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in workers):  # none writes on, orphaned
        assert time.monotonic() < deadline, "a worker outlived its coordinator"
        time.sleep(0.05)
    explain(runs[1], runs[2], runs[0], out, batch_size=1, threads=1)
    _assert_same_bundle(out, runs[3], exact=False)
