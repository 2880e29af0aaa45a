"""The learner: one refit per burst, a bounded queue, predictions that never wait for a fit."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from ls_backend.backend import service
from ls_backend.backend.app import Backend, BackendSettings
from ls_backend.backend.learner import Learner, QueueFull
from tests.ls_backend.backend.fake_label_studio import PROJECT, FakeLabelStudio
from tests.ls_backend.backend.test_annotator_model import _board, _event


def test_a_burst_of_events_is_applied_in_order_and_refitted_once() -> None:
    applied, fitted = [], []
    learner = Learner(lambda e: applied.append(e) or {"ann"}, fitted.append, settle=0.3)
    for i in range(20):
        learner.submit(i, i)
        time.sleep(0.01)
    assert learner.wait_idle(10)
    assert applied == list(range(20))
    assert fitted == ["ann"]


def test_a_replayed_event_takes_the_place_of_the_pending_one() -> None:
    gate = threading.Event()
    applied = []

    def apply(event):
        gate.wait(5)
        applied.append(event)
        return ()

    learner = Learner(apply, lambda who: None, settle=0.01)
    learner.submit("first", "first")  # being applied while the rest queue
    for _ in range(5):
        learner.submit(("annotation", 7), "replay")
    gate.set()
    assert learner.wait_idle(10)
    assert applied == ["first", "replay"]


def test_the_queue_is_bounded() -> None:
    gate = threading.Event()
    learner = Learner(lambda e: gate.wait(5) and (), lambda who: None, capacity=3, settle=0.01)
    learner.submit(0, 0)  # taken by the thread, blocked in apply
    time.sleep(0.1)
    for key in (1, 2, 3):
        learner.submit(key, key)
    with pytest.raises(QueueFull, match="3 events waiting"):
        learner.submit(4, 4)
    learner.submit(3, "again")  # a pending key still takes its place
    gate.set()
    assert learner.wait_idle(10)


def test_a_flood_cannot_starve_the_refit() -> None:
    fitted = []
    learner = Learner(lambda e: {"ann"}, fitted.append, settle=0.2, longest=0.3)
    deadline = time.monotonic() + 1.2
    i = 0
    while time.monotonic() < deadline:  # an event every 20 ms: never a pause of 0.2 s
        learner.submit(i, i)
        i += 1
        time.sleep(0.02)
    assert fitted, "no refit during a flood"
    assert learner.wait_idle(10)


def test_predict_answers_from_the_last_model_while_a_fit_runs(tmp_path, monkeypatch) -> None:
    ls = FakeLabelStudio()
    backend = Backend(BackendSettings(state_dir=tmp_path), label_studio=ls)
    cardinal, jay = _board("cardinal", 40), _board("jay", 30)
    backend.webhook(_event(ls, 1, cardinal, author=7))
    assert backend.wait_idle()
    ls.add_task({"id": 99, "data": jay})
    body = {"tasks": [{"id": 99, "data": jay}], "project": PROJECT}
    before = backend.predict(body)
    fit = service.fit_annotator_model
    fitting = threading.Event()

    def slow_fit(*args, **kwargs):
        fitting.set()
        time.sleep(3)
        return fit(*args, **kwargs)

    monkeypatch.setattr(service, "fit_annotator_model", slow_fit)
    finch = _board("finch", 20)
    backend.webhook(_event(ls, 2, finch, author=7))
    assert fitting.wait(10)
    start = time.monotonic()
    during = backend.predict(body)
    assert time.monotonic() - start < 1.0
    assert during == before  # the last fitted model
    assert backend.learning
    assert backend.wait_idle(30)
    backend.store.close()


def test_twenty_submits_cost_one_refit(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("ls_backend.backend.learner.SETTLE_SECONDS", 0.5)
    ls = FakeLabelStudio()
    backend = Backend(BackendSettings(state_dir=tmp_path), label_studio=ls)
    assert backend.wait_idle()
    fits = backend.fits
    for i in range(20):
        backend.webhook(_event(ls, 100 + i, _board(f"c{i}", 10), author=7))
    assert backend.wait_idle(60)
    assert backend.fits - fits == 1
    assert len(backend.store.annotation_ids()) == 20
    assert backend.model("ann@example.org", "space-1") is not None
    backend.store.close()


def test_tasks_are_read_back_once_per_request(tmp_path) -> None:
    """A request of many tasks asks Label Studio once per project, not once per task."""
    ls = FakeLabelStudio()
    backend = Backend(BackendSettings(state_dir=tmp_path), label_studio=ls)
    assert backend.wait_idle()
    tasks = []
    for i in range(50):
        data = {**_board("jay", 4)["activations"][0], "category": "jay"}
        data |= {"annotator": "ann@example.org", "embedding_space": "space-1"}
        tasks.append(ls.add_task({"id": i, "data": data}))
    calls = ls.calls
    answer = backend.predict({"tasks": tasks, "project": f"{PROJECT}.1700000000"})
    assert len(answer["results"]) == 50
    assert ls.calls - calls == 1
    assert np.all([r == [] for r in answer["results"]])  # nothing learnt yet
    backend.store.close()
