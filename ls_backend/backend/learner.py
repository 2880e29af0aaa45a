"""The backend's learner: one background thread, a bounded queue, one refit per burst.

Events are applied in arrival order (each a read from Label Studio and a store write); an event
with the key of a pending one (a replayed webhook, a second update of one annotation) takes its
place instead of queueing twice. Once no event has come for :data:`SETTLE_SECONDS` (or the burst has
lasted :data:`LONGEST_SECONDS`), every annotator the applied events touched is refitted once, so
twenty submits in a row cost one or two fits, not twenty. Predictions never wait for this
thread: they use the last model it fitted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Any

__all__ = ["LONGEST_SECONDS", "MAX_PENDING", "SETTLE_SECONDS", "Learner", "QueueFull"]

MAX_PENDING = 10_000
"""The most events waiting to be applied; beyond it an event is refused (the backend answers
503 and the annotation is learnt at the next resync)."""

SETTLE_SECONDS = 1.0
"""How long the learner waits for a burst's next event before it refits."""

LONGEST_SECONDS = 10.0
"""The longest a burst delays the refit: a flood of events cannot starve the models."""

log = logging.getLogger("xnaming.backend")
_NOTHING = object()


class QueueFull(RuntimeError):
    """The learner holds :data:`MAX_PENDING` events already."""


class Learner:
    """Apply queued events on one thread, then refit each touched annotator once.

    Parameters
    ----------
    apply
        ``apply(event)`` -> the annotators whose namings the event may have changed.
    refit
        ``refit(annotator)``: fit the annotator's models from the store.
    capacity
        The most pending events.
    settle, longest
        :data:`SETTLE_SECONDS` and :data:`LONGEST_SECONDS` unless given.
    """

    def __init__(
        self,
        apply: Callable[[Any], Iterable[str]],
        refit: Callable[[str], None],
        *,
        capacity: int = MAX_PENDING,
        settle: float | None = None,
        longest: float | None = None,
    ) -> None:
        self._apply, self._refit = apply, refit
        self._capacity = capacity
        self._settle = SETTLE_SECONDS if settle is None else settle
        self._longest = LONGEST_SECONDS if longest is None else longest
        self._pending: OrderedDict[Hashable, Any] = OrderedDict()
        self._changed = threading.Condition()
        self._idle = threading.Event()
        self._idle.set()
        self.fits = 0
        """Refits done so far (for tests and benchmarks)."""
        self._thread = threading.Thread(target=self._run, name="learner", daemon=True)
        self._thread.start()

    def submit(self, key: Hashable, event: Any) -> None:
        """Queue ``event``, replacing a pending one of the same ``key``.

        Raises
        ------
        QueueFull
            When :data:`MAX_PENDING` events wait already.
        """
        with self._changed:
            if key not in self._pending and len(self._pending) >= self._capacity:
                raise QueueFull(
                    f"the learner has {self._capacity:,} events waiting; this one is learnt at "
                    "the backend's next start (resync)"
                )
            self._idle.clear()
            self._pending[key] = event
            self._changed.notify()

    @property
    def busy(self) -> bool:
        """Whether events are pending or being learnt."""
        return not self._idle.is_set()

    def wait_idle(self, timeout: float = 30) -> bool:
        """Block until every queued event is applied and its annotators refitted."""
        return self._idle.wait(timeout)

    def _take(self, timeout: float | None) -> Any:
        """The oldest pending event, or :data:`_NOTHING` after ``timeout`` seconds without."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._pending, timeout):
                return _NOTHING
            return self._pending.popitem(last=False)[1]

    def _run(self) -> None:
        touched: set[str] = set()
        burst = 0.0  # when the burst's first event was applied
        while True:
            event = self._take(self._settle if burst else None)
            if event is not _NOTHING:
                try:
                    touched |= set(self._apply(event))
                except Exception:  # one bad event must not stop learning
                    log.exception("could not learn from %s", event)
                burst = burst or time.monotonic()
                if time.monotonic() - burst < self._longest:
                    continue  # the refit waits for a pause in the burst
            for annotator in sorted(touched):
                try:
                    self._refit(annotator)
                    self.fits += 1
                except Exception:
                    log.exception("could not fit the model of %s", annotator)
            touched.clear()
            burst = 0.0
            with self._changed:
                if not self._pending:
                    self._idle.set()
