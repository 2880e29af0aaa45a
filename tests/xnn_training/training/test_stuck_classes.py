"""A class whose xNN is stuck in a poor fit is trained again from fresh starts; the others stay."""

from __future__ import annotations

import pytest
import torch

from xnn_training.training.fit_xnn import (
    STUCK_RMSE,
    fit_xnn,
    refit_stuck_classes,
    training_rmse_share,
)

SETTINGS = {"k": 3, "hidden": (16,), "epochs": 300, "batch_size": 64, "lr": 1e-2}


@pytest.fixture(scope="module")
def problem():
    generator = torch.Generator().manual_seed(0)
    features = torch.rand(256, 16, generator=generator)
    targets = features @ torch.rand(16, 3, generator=generator) * 4  # three classes' logits
    return features, targets


def _snapshot(xnn) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in xnn.named_parameters()}


def test_a_stuck_class_is_refit_and_the_others_are_kept(problem):
    features, targets = problem
    xnn = fit_xnn(features, targets, seed=0, **SETTINGS)
    assert (training_rmse_share(xnn, features, targets) < STUCK_RMSE).all()
    with torch.no_grad():  # class 1 stuck: its head reads nothing, its score is a constant
        xnn.head_weight[1].zero_()
    before = _snapshot(xnn)
    broken = float(training_rmse_share(xnn, features, targets)[1])
    assert broken > 5 * STUCK_RMSE

    found = refit_stuck_classes(xnn, features, targets, restarts=1, seed=0, **SETTINGS)

    assert list(found) == [1]
    assert found[1][0] == pytest.approx(broken)
    assert found[1][1] < STUCK_RMSE
    assert float(training_rmse_share(xnn, features, targets)[1]) == pytest.approx(found[1][1])
    for name, value in xnn.named_parameters():
        torch.testing.assert_close(value[[0, 2]], before[name][[0, 2]], rtol=0, atol=0)
    assert not torch.equal(xnn.encoder[0].weight[1], before["encoder.0.weight"][1])


def test_nothing_stuck_nothing_changed(problem):
    features, targets = problem
    xnn = fit_xnn(features, targets, seed=0, **SETTINGS)
    before = _snapshot(xnn)
    assert refit_stuck_classes(xnn, features, targets, restarts=2, seed=0, **SETTINGS) == {}
    for name, value in xnn.named_parameters():
        assert torch.equal(value, before[name])


def test_no_restarts_reports_but_keeps_the_stuck_class(problem):
    features, targets = problem
    xnn = fit_xnn(features, targets, seed=0, **SETTINGS)
    with torch.no_grad():
        xnn.head_weight[2].zero_()
    found = refit_stuck_classes(xnn, features, targets, restarts=0, seed=0, **SETTINGS)
    assert list(found) == [2]
    assert found[2][0] == found[2][1]


def test_a_short_schedule_leaves_every_class_as_it_is(problem):
    # Three epochs: every class fits poorly, none worse than the others; nothing to restart.
    features, targets = problem
    short = SETTINGS | {"epochs": 3}
    xnn = fit_xnn(features, targets, seed=0, **short)
    assert (training_rmse_share(xnn, features, targets) > STUCK_RMSE).all()
    assert refit_stuck_classes(xnn, features, targets, restarts=2, seed=0, **short) == {}
