"""Sharding helpers: the static split, torchrun's rank, and ranks waiting for each other."""

from __future__ import annotations

import os
import socket
import time
from datetime import timedelta
from pathlib import Path

import pytest
import torch.multiprocessing as mp

from xnn_training.maps.shards import Group, Rank, ShardError, launched_rank, shard


def test_batches_go_round_robin_and_spare_ranks_get_none():
    batches = [[0, 1], [2, 3], [4, 5], [6]]
    assert [shard(batches, Rank(r, 3)) for r in range(3)] == [
        [[0, 1], [6]], [[2, 3]], [[4, 5]]
    ]  # fmt: skip
    assert shard(batches, Rank(5, 6)) == []
    assert sorted(b for r in range(6) for b in shard(batches, Rank(r, 6))) == batches


def test_the_rank_comes_from_torchrun_or_is_rank_0_of_1(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert launched_rank() == Rank(0, 1, 0)
    assert Rank().part == "rank-00000"
    assert not Rank().sharded
    monkeypatch.setenv("RANK", "5")
    monkeypatch.setenv("WORLD_SIZE", "8")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert launched_rank() == Rank(5, 8, 1)
    assert launched_rank().part == "rank-00005"
    monkeypatch.setenv("RANK", "8")
    with pytest.raises(ValueError, match="RANK: expected 0 <= RANK < WORLD_SIZE = 8, got 8"):
        launched_rank()
    monkeypatch.setenv("RANK", "one")
    with pytest.raises(ValueError, match="expected integers"):
        launched_rank()


def test_workers_under_torchrun_are_refused(monkeypatch, tmp_path):
    from xnn_training.maps.explain import (
        explain,  # here: the spawned ranks below need not import it
    )

    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="--nproc-per-node"):
        explain(tmp_path, tmp_path, tmp_path, tmp_path / "b", workers=2)


# --- ranks waiting for each other, in real processes with gloo ---------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rank(index: int, world: int, port: int, scenario: str, results: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(index),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(index))  # fmt: skip
    rank = launched_rank()
    outcome = "returned"
    try:
        with Group(rank, timeout=timedelta(seconds=2)) as group:
            if scenario == "late":
                if index == 1:
                    time.sleep(6)  # a rank that hangs: the others must not wait forever
                group.wait_all("What the others finished is kept.")
            else:

                def fail() -> None:
                    raise ValueError("bundle: a different bundle")

                group.first(fail)
    except (ShardError, ValueError, RuntimeError) as error:
        outcome = f"{type(error).__name__}: {error}"
    with open(os.path.join(results, f"{index}.txt"), "w") as file:
        file.write(outcome)


def _run(scenario: str, tmp_path, monkeypatch, world: int = 2) -> list[str]:
    # The spawned interpreters import this module by its name, ``tests.xnn_training...``.
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[3]))
    mp.spawn(_rank, args=(world, _free_port(), scenario, str(tmp_path)), nprocs=world)
    return [(tmp_path / f"{r}.txt").read_text() for r in range(world)]


@pytest.mark.slow
def test_a_rank_that_does_not_arrive_stops_the_wait_with_a_clear_error(tmp_path, monkeypatch):
    first, _late = _run("late", tmp_path, monkeypatch)
    assert first.startswith("ShardError: rank 0: the ranks did not all finish within 2 s")
    assert "What the others finished is kept." in first
    assert "1" in first.split("(", 1)[1]  # torch names the rank that did not arrive


@pytest.mark.slow
def test_an_error_on_rank_0_is_raised_on_every_rank(tmp_path, monkeypatch):
    first, second = _run("first", tmp_path, monkeypatch)
    assert first == "ValueError: bundle: a different bundle"
    assert second == "ValueError: rank 0 stopped: ValueError: bundle: a different bundle"
