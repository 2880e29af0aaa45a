"""The small trained toybirds run, built once per test session and shared (read-only).

Three species of 9 images at 32 px, a toy CNN trained 2 epochs and its xNNs (k = 3) 3 epochs:
enough for real runs, maps and bundles in seconds. Tests must not change these files; a test
that needs to alter a run copies it first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

DNN_SETTINGS = {"epochs": 2, "batch_size": 8}
"""How the run's DNN was trained: a test that calls train_dnn again with these resumes it."""
XNN_SETTINGS = {"k": 3, "hidden": (8, 4), "epochs": 3, "batch_size": 8}
"""How the run's xNN was trained."""


@dataclass(frozen=True)
class ToybirdsRun:
    """A toybirds data set with a DNN run and an xNN run trained on it."""

    data: Path
    dnn: Path
    xnn: Path


@pytest.fixture(scope="session")
def toybirds_run(tmp_path_factory: pytest.TempPathFactory) -> ToybirdsRun:
    """The shared small trained run (see the module docstring)."""
    from xnn_training import make_toybirds, train_dnn, train_xnn

    root = tmp_path_factory.mktemp("toybirds-run")
    data = make_toybirds(root / "data", classes=3, per_class=9, size=32, seed=0)
    dnn = train_dnn(data, root / "dnn", **DNN_SETTINGS)
    xnn = train_xnn(dnn, root / "xnn", **XNN_SETTINGS)
    return ToybirdsRun(data=data, dnn=dnn, xnn=xnn)


@pytest.fixture
def record_bundle_adds(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[str]]:
    """Patch ``BundleWriter.add`` to record the image id of every image written.

    Call it with ``interrupt_after=N`` to raise ``KeyboardInterrupt`` (a Ctrl-C) once N images
    are written, then again without, to let a resumed run finish; each call returns its own
    list of image ids and patches over the previous call.
    """
    from xnn_training.bundle.io import BundleWriter

    original = BundleWriter.add

    def patch(*, interrupt_after: int | None = None) -> list[str]:
        added: list[str] = []

        def add(self, explained) -> None:
            if interrupt_after is not None and len(added) == interrupt_after:
                raise KeyboardInterrupt
            added.append(explained.image_id)
            original(self, explained)

        monkeypatch.setattr(BundleWriter, "add", add)
        return added

    return patch
