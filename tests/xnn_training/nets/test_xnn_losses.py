"""Each loss term against a slow, obviously-correct float64 version written from its definition."""

import itertools
import math

import torch

from xnn_training.nets.losses import LossWeights, faithfulness, pull_away, sparse_reconstruction


def _slow_faithfulness(scores, targets):
    batch, classes = scores.shape
    return [sum((scores[b, c] - targets[b, c]) ** 2 for b in range(batch)) / batch
            for c in range(classes)]  # fmt: skip


def _slow_reconstruction(recon, features, q):
    classes, batch, d = recon.shape
    out = []
    for c in range(classes):
        total = 0.0
        for j in range(d):
            e_j = sum((recon[c, b, j] - features[b, j]) ** 2 for b in range(batch)) / batch
            total += math.log(1 + q * e_j)
        out.append(total / d)
    return out


def _cos(u, v):
    nu, nv = math.sqrt(sum(a * a for a in u)), math.sqrt(sum(b * b for b in v))
    if nu == 0 or nv == 0:
        return 0.0
    return sum(a * b for a, b in zip(u, v, strict=True)) / (nu * nv)


def _slow_pull_away(terms, over):
    out = []
    for matrix in terms.tolist():  # (B, k)
        vectors = [list(col) for col in zip(*matrix, strict=True)] if over == "features" else matrix
        pairs = [(i, j) for i, j in itertools.product(range(len(vectors)), repeat=2) if i != j]
        out.append(sum(_cos(vectors[i], vectors[j]) ** 2 for i, j in pairs) / len(pairs))
    return out


def test_faithfulness_matches_definition():
    g = torch.Generator().manual_seed(0)
    scores, targets = torch.randn(7, 3, generator=g), torch.randn(7, 3, generator=g)
    expected = torch.tensor(_slow_faithfulness(scores.double(), targets.double()))
    torch.testing.assert_close(faithfulness(scores, targets).double(), expected)


def test_sparse_reconstruction_matches_definition():
    g = torch.Generator().manual_seed(1)
    recon = torch.rand(3, 6, 5, generator=g, dtype=torch.float64)
    features = torch.rand(6, 5, generator=g, dtype=torch.float64)
    for q in (1.0, 100.0):
        expected = torch.tensor(_slow_reconstruction(recon, features, q), dtype=torch.float64)
        torch.testing.assert_close(sparse_reconstruction(recon, features, q), expected)


def test_pull_away_matches_definition_both_variants():
    g = torch.Generator().manual_seed(2)
    terms = torch.randn(3, 6, 4, generator=g, dtype=torch.float64)
    terms[0, :, 1] = 0  # an inactive X-feature: cosine 0 with everything
    for over in ("features", "images"):
        expected = torch.tensor(_slow_pull_away(terms, over), dtype=torch.float64)
        torch.testing.assert_close(pull_away(terms, over), expected)


def test_pull_away_bounds():
    orthogonal = torch.eye(4, dtype=torch.float64)[None]  # 4 images, 4 X-features
    assert float(pull_away(orthogonal, "features")) == 0.0
    parallel = torch.ones(1, 5, 3)
    assert math.isclose(float(pull_away(parallel, "features")), 1.0, rel_tol=1e-6)


def test_loss_weights_reject_bad_values():
    import pytest

    with pytest.raises(ValueError, match="rec"):
        LossWeights(rec=-1)
    with pytest.raises(ValueError, match="pull_away_over"):
        LossWeights(pull_away_over="rows")
