"""Significant X-features: exactly the minimum subset, checked by brute force."""

from itertools import combinations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from xnn_training.maps.significant import significant_features


def brute_force_minimum_size(terms: np.ndarray, threshold: float) -> int:
    """Size of the smallest subset of positive terms reaching threshold * positive sum."""
    positive = [t for t in terms if t > 0]
    if not positive:
        return 0
    total = float(np.cumsum(sorted(positive, reverse=True))[-1])
    for size in range(1, len(positive) + 1):
        if any(sum(c) >= threshold * total for c in combinations(positive, size)):
            return size
    raise AssertionError("the full set always reaches the threshold")


# Quarter-integers: every partial sum is exact in float64, so the brute force and the
# implementation compare the same numbers (only threshold * total is rounded, identically).
quarters = st.integers(-12, 12).map(lambda v: v / 4)
rows = st.lists(quarters, min_size=0, max_size=7)
thresholds = st.sampled_from([0.05, 0.25, 0.5, 0.75, 0.9, 0.95, 1.0]) | st.floats(
    0.01, 1.0, allow_nan=False
)


@settings(max_examples=300, deadline=None)
@given(rows, thresholds)
def test_selection_is_a_minimum_subset(row, threshold):
    terms = np.array(row, dtype=np.float64)
    result = significant_features(terms[None, :] if terms.size else np.zeros((1, 0)), threshold)
    assert len(result) == result.counts[0] == brute_force_minimum_size(terms, threshold)
    if len(result):
        total = terms[terms > 0].sum()
        assert result.contribution.sum() >= threshold * total
        np.testing.assert_array_equal(result.contribution, terms[result.feature])
        np.testing.assert_allclose(result.share, terms[result.feature] / total)
        np.testing.assert_array_equal(result.rank, np.arange(1, len(result) + 1))
        assert np.all(np.diff(result.contribution) <= 0)
        # Nothing left out is larger than what was taken.
        left_out = np.delete(terms, result.feature)
        assert left_out.size == 0 or left_out.max() <= result.contribution.min()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(quarters, min_size=4, max_size=4), min_size=1, max_size=6))
def test_batch_equals_one_image_at_a_time(batch):
    terms = np.array(batch)
    together = significant_features(terms)
    for i, row in enumerate(terms):
        alone = significant_features(row)
        mine = together.image == i
        np.testing.assert_array_equal(together.feature[mine], alone.feature)
        np.testing.assert_array_equal(together.rank[mine], alone.rank)
        assert together.counts[i] == alone.counts[0]


def test_worked_example():
    # Positive sum 10: 6 reaches 60%, 6 + 3 = 90% -> two features; the negative term is ignored.
    result = significant_features(np.array([[3.0, -4.0, 6.0, 1.0]]))
    np.testing.assert_array_equal(result.feature, [2, 0])
    np.testing.assert_allclose(result.contribution, [6.0, 3.0])
    np.testing.assert_allclose(result.share, [0.6, 0.3])
    np.testing.assert_array_equal(result.rank, [1, 2])
    np.testing.assert_array_equal(result.image, [0, 0])


def test_ties_are_taken_in_column_order():
    result = significant_features(np.array([[1.0, 2.0, 2.0, 2.0]]), threshold=0.5)
    np.testing.assert_array_equal(result.feature, [1, 2])


def test_images_without_positive_terms_get_none_but_are_counted():
    terms = np.array([[0.0, 0.0, 0.0], [-1.0, 0.0, -2.0], [0.0, 5.0, 0.0]])
    result = significant_features(terms)
    np.testing.assert_array_equal(result.counts, [0, 0, 1])
    np.testing.assert_array_equal(result.image, [2])
    np.testing.assert_array_equal(result.feature, [1])
    np.testing.assert_allclose(result.share, [1.0])


def test_zero_terms_are_never_selected_even_at_threshold_one():
    result = significant_features(np.array([[2.0, 0.0, 1.0, 0.0]]), threshold=1.0)
    np.testing.assert_array_equal(result.feature, [0, 2])


def test_threshold_exactly_reached_stops_there():
    # 0.5 of 8 is exactly 4, reached by the first term alone.
    result = significant_features(np.array([[4.0, 2.0, 2.0]]), threshold=0.5)
    np.testing.assert_array_equal(result.feature, [0])


def test_torch_input_and_single_image():
    result = significant_features(torch.tensor([0.5, 2.0, -1.0], requires_grad=True))
    np.testing.assert_array_equal(result.feature, [1, 0])
    assert result.counts.tolist() == [2]


def test_empty_batch():
    result = significant_features(np.zeros((0, 5)))
    assert len(result) == 0
    assert result.counts.shape == (0,)


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.01, float("nan"), float("inf")])
def test_bad_threshold_is_refused(threshold):
    with pytest.raises(ValueError, match="threshold must be in"):
        significant_features(np.ones((2, 3)), threshold)


def test_non_numeric_threshold_is_refused():
    with pytest.raises(TypeError, match="threshold"):
        significant_features(np.ones((2, 3)), "0.9")


def test_bad_shape_is_refused():
    with pytest.raises(ValueError, match=r"shape \(n_images, k\).*\(2, 3, 4\)"):
        significant_features(np.ones((2, 3, 4)))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_values_are_refused_with_their_position(bad):
    terms = np.ones((3, 4))
    terms[2, 1] = bad
    with pytest.raises(ValueError, match=r"\(2, 1\)"):
        significant_features(terms)
