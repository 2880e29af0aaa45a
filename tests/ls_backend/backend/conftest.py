"""The backend's unit tests wait for the learner often: let it refit after a short pause."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def quick_learner(monkeypatch):
    monkeypatch.setattr("ls_backend.backend.learner.SETTLE_SECONDS", 0.05)
