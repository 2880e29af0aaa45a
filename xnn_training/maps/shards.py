"""One explain run over several processes: torchrun ranks, or ``--workers`` on one machine.

The work is split statically, without a scheduler: the images still to explain, cut into
batches in data set order, go to the ranks round robin (batch b to rank ``b % world_size``,
:func:`shard`). Every batch then holds the images a single process would have batched together,
and any number of ranks divides any rest, also more ranks than batches (the extra ranks get
none). The processes wait for each other twice: before explaining, until rank 0 has opened the
bundle (:meth:`Group.first`), and at the end, until every rank has finished its share
(:meth:`Group.wait_all`); then rank 0 merges the parts and finishes the bundle.

Under torchrun the ranks talk through ``torch.distributed`` with the gloo backend, on any
device: what they exchange is a few bytes of control on the CPU (the maps go through the file
system), and gloo's ``monitored_barrier`` names the ranks that did not arrive. With
``--workers`` the parent process coordinates its children (``torch.multiprocessing``) and
waits for them to exit; no process group is needed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch.distributed as dist
import torch.multiprocessing as mp

__all__ = ["Group", "Rank", "ShardError", "launched_rank", "run_workers", "shard"]

T = TypeVar("T")


class ShardError(RuntimeError):
    """A rank or worker failed, or did not finish in time; what the others finished is kept."""


@dataclass(frozen=True)
class Rank:
    """This process's place in a sharded run: ``rank`` of ``world_size``, ``local_rank`` on
    its machine (which GPU it takes, where its progress bar goes)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def part(self) -> str:
        """Its part of the bundle's tables: ``parts/rank-00003/``."""
        return f"rank-{self.rank:05d}"

    @property
    def sharded(self) -> bool:
        return self.world_size > 1


def launched_rank() -> Rank:
    """The rank torchrun gave this process (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), the
    caller's process group if it made one, or rank 0 of 1.

    Raises
    ------
    ValueError
        torchrun's variables that are not integers, or a rank outside ``[0, WORLD_SIZE)``.
    """
    env = os.environ
    try:
        local = int(env.get("LOCAL_RANK", "0"))
        if dist.is_available() and dist.is_initialized():
            return Rank(dist.get_rank(), dist.get_world_size(), local)
        if "RANK" not in env or "WORLD_SIZE" not in env:
            return Rank()
        rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
    except ValueError as error:
        raise ValueError(
            f"RANK, WORLD_SIZE, LOCAL_RANK: expected integers (torchrun sets them), got "
            f"{env.get('RANK')!r}, {env.get('WORLD_SIZE')!r}, {env.get('LOCAL_RANK')!r}"
        ) from error
    if not 0 <= rank < world:
        raise ValueError(f"RANK: expected 0 <= RANK < WORLD_SIZE = {world}, got {rank}")
    return Rank(rank, world, local)


def shard(batches: Sequence[T], rank: Rank) -> list[T]:
    """The batches ``rank`` explains: every ``world_size``-th, from its rank on."""
    return list(batches[rank.rank :: rank.world_size])


class Group:
    """The ranks of a torchrun job, for the moments they wait for each other.

    A context manager: on entry, with more than one rank, it joins them in a gloo process group
    (or, if the caller has already made one, a gloo group of the same ranks); on exit it
    leaves the group it made. With one rank it does nothing and never waits.

    Parameters
    ----------
    rank
        This process's rank.
    timeout
        How long a rank waits for the others, at each wait.
    """

    def __init__(self, rank: Rank, *, timeout: timedelta) -> None:
        self.rank, self.timeout = rank, timeout
        self._group: Any = None
        self._made = False

    def __enter__(self) -> Group:
        if not self.rank.sharded:
            return self
        if dist.is_initialized():
            self._group = dist.new_group(backend="gloo", timeout=self.timeout)
        else:
            dist.init_process_group("gloo", timeout=self.timeout)
            self._made = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._made:
            dist.destroy_process_group()
        elif self._group is not None:
            dist.destroy_process_group(self._group)
        self._made, self._group = False, None

    def first(self, function: Callable[[], T]) -> T | None:
        """Run ``function`` on rank 0 while the other ranks wait; its error is raised on every
        rank (a ``ValueError`` as a ``ValueError``, anything else as :class:`ShardError`).

        Returns
        -------
        ``function()`` on rank 0, None on the others.
        """
        if not self.rank.sharded:
            return function()
        message: list[Any] = [None]
        result = None
        if self.rank.rank == 0:
            try:
                result = function()
            except BaseException as error:
                message = [(isinstance(error, ValueError), f"{type(error).__name__}: {error}")]
                dist.broadcast_object_list(message, src=0, group=self._group)
                raise
        dist.broadcast_object_list(message, src=0, group=self._group)
        if message[0] is not None:
            bad_input, text = message[0]
            if bad_input:
                raise ValueError(f"rank 0 stopped: {text}")
            raise ShardError(f"rank 0 failed: {text}")
        return result

    def wait_all(self, what: str) -> None:
        """Wait until every rank gets here; ``what`` says what is lost otherwise.

        Raises
        ------
        ShardError
            Some rank did not arrive within the timeout (torch names which).
        """
        if not self.rank.sharded:
            return
        try:
            dist.monitored_barrier(group=self._group, timeout=self.timeout, wait_all_ranks=True)
        except RuntimeError as error:
            seconds = self.timeout.total_seconds()
            limit = f"{seconds:g} s" if seconds < 120 else f"{seconds / 60:g} minutes"
            raise ShardError(
                f"rank {self.rank.rank}: the ranks did not all finish within {limit} "
                f"({str(error).strip().splitlines()[0]}). {what}"
            ) from error


def run_workers(
    function: Callable[..., None], args: tuple, workers: int, *, prepare: Callable[[], T]
) -> T:
    """Run ``function(index, go, *args)`` in ``workers`` new processes, ``prepare()`` here
    meanwhile, and wait for all of them.

    The workers start first (a fresh interpreter each, ``spawn``: safe with CUDA and threads),
    so their start-up overlaps ``prepare``; a worker calls ``go.wait()`` before it needs what
    ``prepare`` makes (the opened bundle), and ``go`` is set when ``prepare`` has returned. If
    ``prepare`` raises, the workers are stopped and its error is raised. When a worker fails,
    torch stops the others. A worker dies with this process (Linux), so none outlives it.

    Returns
    -------
    What ``prepare`` returned.

    Raises
    ------
    ShardError
        A worker raised or was killed; the message names it and its last error line.
    """
    go = mp.get_context("spawn").Event()
    context = mp.start_processes(
        _worker, args=(function, os.getpid(), go, args), nprocs=workers, join=False,
        start_method="spawn",
    )  # fmt: skip
    try:
        prepared = prepare()
    except BaseException:
        for process in context.processes:
            process.terminate()
        for process in context.processes:
            process.join()
        raise
    go.set()
    try:
        while not context.join():
            pass
    except mp.ProcessRaisedException as error:
        last = str(error).strip().splitlines()[-1]
        raise ShardError(f"worker {error.error_index} of {workers} failed: {last}") from error
    except mp.ProcessExitedException as error:
        how = f"signal {error.signal_name}" if error.signal_name else f"status {error.exit_code}"
        raise ShardError(f"worker {error.error_index} of {workers} ended with {how}") from error
    return prepared


def _worker(index: int, function: Callable[..., None], parent: int, go: Any, args: tuple) -> None:
    _die_with(parent)
    function(index, go, *args)


def _die_with(parent: int) -> None:
    """Have the kernel kill this process when ``parent`` ends (Linux's PR_SET_PDEATHSIG)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: an orphaned worker runs to its end
        return
    if os.getppid() != parent:  # it ended before the request was made
        os._exit(1)


_PR_SET_PDEATHSIG = 1
