"""The agreement stage gives the same tables whether categories run in one process or several."""

from __future__ import annotations

import warnings

import pandas as pd

from analysis import agreement_tables, category_namings, check_activations, check_namings
from analysis.namers.synthetic import synthetic_study


def test_workers_do_not_change_the_tables():
    activations, namings = synthetic_study(categories=5, annotators=4, activations=60, seed=3)
    activations = check_activations(activations)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        categories = category_namings(activations, check_namings(namings, activations))
    serial = agreement_tables(categories, workers=1)
    parallel = agreement_tables(categories, workers=2)
    for one, other in zip(serial, parallel, strict=True):
        pd.testing.assert_frame_equal(one, other)
    assert len(serial[0]) == 5 * 6  # categories x pairs of 4 annotators
