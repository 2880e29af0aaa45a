"""The vectorised xNN equals separate per-class xNNs on the same weights."""

import pytest
import torch
from torch import nn

from xnn_training.nets.xnn import XNN, BatchedLinear


def _xnn(seed=0, **kw):
    torch.manual_seed(seed)
    return XNN(in_features=10, classes=4, k=3, hidden=(8, 5), **kw).eval()


def test_per_class_encoder_and_head_equal_the_vectorised_module():
    xnn = _xnn()
    features = torch.rand(9, 10)
    out = xnn(features)
    assert out["x_features"].shape == (9, 4, 3)
    assert out["scores"].shape == (9, 4)
    for c in range(4):
        encoder = xnn.encoder_for_class(c)
        assert all(isinstance(m, nn.Linear | nn.ReLU) for m in encoder)
        assert isinstance(encoder[-1], nn.ReLU)
        w, b = xnn.head_for_class(c)
        x = encoder(features)
        torch.testing.assert_close(x, out["x_features"][:, c])
        torch.testing.assert_close(x @ w + b, out["scores"][:, c])


def test_separately_built_xnns_give_the_same_outputs():
    """Build C independent torch networks from the weights; the batched module must agree."""
    xnn = _xnn(seed=3)
    features = torch.rand(6, 10)
    out = xnn(features)
    for c in range(4):
        layers = []
        for batched in xnn.encoder:
            lin = nn.Linear(batched.weight.shape[2], batched.weight.shape[1])
            lin.weight.data, lin.bias.data = batched.weight[c].clone(), batched.bias[c].clone()
            layers += [lin, nn.ReLU()]
        head = nn.Linear(3, 1)
        head.weight.data = xnn.head_weight[c : c + 1].clone()
        head.bias.data = xnn.head_bias[c : c + 1].clone()
        separate = nn.Sequential(*layers, head)
        torch.testing.assert_close(separate(features)[:, 0], out["scores"][:, c])


def test_batched_linear_shared_input_equals_per_class_input():
    torch.manual_seed(0)
    layer = BatchedLinear(3, 4, 2)
    x = torch.randn(5, 4)
    torch.testing.assert_close(layer(x), layer(x.expand(3, 5, 4).contiguous()))
    columns = torch.tensor([1])
    torch.testing.assert_close(layer(x, columns), layer(x)[..., columns])


def test_fold_normalisation_preserves_the_function():
    xnn = _xnn(seed=5)
    features = torch.rand(7, 10) * 4
    scale, mean, std = 4.0, torch.tensor([1.0, -2, 0.5, 3]), torch.tensor([2.0, 0.5, 1, 3])
    before = xnn(features / scale)["scores"] * std + mean
    x_before = xnn(features / scale)["x_features"]
    recon_before = xnn.reconstruct(xnn.encode(features / scale)) * scale
    xnn.fold_normalisation(scale, mean, std)
    torch.testing.assert_close(xnn(features)["scores"], before)
    torch.testing.assert_close(xnn(features)["x_features"], x_before)
    torch.testing.assert_close(xnn.reconstruct(xnn.encode(features)), recon_before)


def test_bad_sizes_and_class_index():
    with pytest.raises(ValueError, match="k=0"):
        XNN(10, 3, k=0)
    with pytest.raises(IndexError, match="out of range"):
        _xnn().encoder_for_class(4)
