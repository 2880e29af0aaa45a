"""Significant X-features: the fewest positive terms of a class score that cover most of it.

A class score of an xNN is ``sum_i w_i * x_i``. Its positive terms are the evidence for the class.
The significant X-features of an image are the minimum subset of positive terms whose sum reaches
``threshold`` (the paper: 90%) of the sum of all positive terms. Taking positive terms in descending
order and stopping at the shortest prefix that reaches the threshold gives exactly that minimum
subset: no subset of the same size sums to more than the largest terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from xnn_training.defaults import SIGNIFICANT_SHARE

__all__ = ["SignificantFeatures", "significant_features"]


@dataclass(frozen=True)
class SignificantFeatures:
    """Significant X-features of a batch of images, one entry per (image, X-feature).

    Entries are ordered by image, then by rank. All arrays have the same length.

    Attributes
    ----------
    image : np.ndarray of int64
        Row of the image in the batch.
    feature : np.ndarray of int64
        Index of the X-feature (column of the contributions).
    contribution : np.ndarray of float64
        Its term ``w_i * x_i`` (always > 0).
    share : np.ndarray of float64
        Its contribution divided by the image's sum of positive terms.
    rank : np.ndarray of int64
        1 for the largest contribution of the image, 2 for the next, ...
    counts : np.ndarray of int64
        Number of significant X-features per image (length: number of images; 0 for an image
        with no positive term).
    """

    image: np.ndarray
    feature: np.ndarray
    contribution: np.ndarray
    share: np.ndarray
    rank: np.ndarray
    counts: np.ndarray

    def __len__(self) -> int:
        return len(self.image)


def significant_features(
    contributions: np.ndarray | torch.Tensor, threshold: float = SIGNIFICANT_SHARE
) -> SignificantFeatures:
    """Select the significant X-features of each image.

    Parameters
    ----------
    contributions : array or tensor, shape (n_images, k) or (k,)
        The terms ``w_i * x_i`` of one class score (X-feature times its head weight), one row
        per image. A 1-D input is one image.
    threshold : float, default :data:`~xnn_training.defaults.SIGNIFICANT_SHARE` (0.9)
        Fraction of the positive score the selected terms must reach, in (0, 1].

    Returns
    -------
    SignificantFeatures
        The selected (image, X-feature) pairs with contribution, share and rank. Images with no
        positive term have none. Equal contributions are taken in column order.

    Raises
    ------
    ValueError
        If ``threshold`` is not in (0, 1], the input is not 1-D or 2-D, or holds NaN or infinity.

    References
    ----------
    Hamidi-Haines et al., "Interactive Naming for Explaining Deep Neural Networks", section 3.3.
    """
    terms = _check_contributions(contributions, threshold)
    n_images, k = terms.shape
    positive = np.clip(terms, 0.0, None)
    # Stable sort on the negated terms: descending, ties in column order.
    order = np.argsort(-positive, axis=1, kind="stable")
    ranked = np.take_along_axis(positive, order, axis=1)
    cumulative = np.cumsum(ranked, axis=1)
    # The total is the last cumulative sum (not a separate sum) so that threshold 1 compares
    # numbers rounded the same way.
    total = cumulative[:, -1] if k else np.zeros(n_images)
    reached = (cumulative >= threshold * total[:, None]) & (ranked > 0)
    has_positive = total > 0
    counts = np.where(has_positive, reached.argmax(axis=1) + 1, 0) if k else np.zeros(n_images)
    counts = counts.astype(np.int64)

    selected = np.arange(k)[None, :] < counts[:, None]
    image, position = np.nonzero(selected)
    feature = order[image, position]
    contribution = ranked[image, position]
    return SignificantFeatures(
        image=image.astype(np.int64),
        feature=feature.astype(np.int64),
        contribution=contribution,
        share=contribution / total[image],
        rank=(position + 1).astype(np.int64),
        counts=counts,
    )


def _check_contributions(contributions: np.ndarray | torch.Tensor, threshold: float) -> np.ndarray:
    if isinstance(threshold, bool) or not isinstance(threshold, int | float | np.floating):
        raise TypeError(f"threshold must be a number in (0, 1], got {type(threshold).__name__}")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1] (the paper uses 0.9), got {threshold!r}")
    if isinstance(contributions, torch.Tensor):
        contributions = contributions.detach().cpu().numpy()
    terms = np.asarray(contributions, dtype=np.float64)
    if terms.ndim == 1:
        terms = terms[None, :]
    if terms.ndim != 2:
        raise ValueError(
            "contributions must have shape (n_images, k) or (k,): the terms w_i * x_i of one "
            f"class score per image; got shape {tuple(np.shape(contributions))}"
        )
    bad = ~np.isfinite(terms)
    if bad.any():
        rows, cols = np.nonzero(bad)
        where = ", ".join(f"({r}, {c})" for r, c in zip(rows[:5], cols[:5], strict=True))
        raise ValueError(
            f"contributions hold {bad.sum()} NaN or infinite value(s), first at (image, feature) "
            f"{where}; check the xNN outputs for these images"
        )
    return terms
