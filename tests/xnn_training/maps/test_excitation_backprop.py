"""Excitation Backprop: hand-computed maps, a slow float64 reference, hygiene of the model."""

import numpy as np
import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

from xnn_training.maps.excitation_backprop import (
    ExcitationBackprop,
    excitation_backprop,
    gradient_map,
)

# --------------------------------------------------------------------------------------------
# Slow float64 reference, written directly from the rule on dense matrices:
# P_in = a_in * (W+^T (P_out / (W+ a_in))), max pooling to the winner, sums split by value.


def conv_matrix(conv: nn.Conv2d, in_shape, bn: nn.BatchNorm2d | None = None):
    """Dense matrix and bias of conv (with bn folded: W' = s W, b' = s (b - mean) + beta)."""
    c_in, h, w = in_shape
    weight = conv.weight.detach().double().numpy()
    bias = conv.bias.detach().double().numpy() if conv.bias is not None else np.zeros(len(weight))
    if bn is not None:
        scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().double().numpy()
        weight = weight * scale[:, None, None, None]
        bias = scale * (bias - bn.running_mean.double().numpy()) + bn.bias.detach().double().numpy()
    c_out, _, kh, kw = weight.shape
    (sh, sw), (ph, pw) = conv.stride, conv.padding
    h_out, w_out = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    matrix = np.zeros((c_out, h_out, w_out, c_in, h, w))
    for y in range(h_out):
        for x in range(w_out):
            for ky in range(kh):
                for kx in range(kw):
                    iy, ix = y * sh - ph + ky, x * sw - pw + kx
                    if 0 <= iy < h and 0 <= ix < w:
                        matrix[:, y, x, :, iy, ix] += weight[:, :, ky, kx]
    n_out = c_out * h_out * w_out
    return matrix.reshape(n_out, -1), np.repeat(bias, h_out * w_out), (c_out, h_out, w_out)


def pool_matrix(values: np.ndarray, shape, size: int, kind: str):
    """Max pooling: 1 at each window's winner (first maximum). Average: 1 / size**2."""
    c, h, w = shape
    values = values.reshape(shape)
    matrix = np.zeros((c, h // size, w // size, c, h, w))
    for ch in range(c):
        for y in range(h // size):
            for x in range(w // size):
                window = values[ch, y * size : (y + 1) * size, x * size : (x + 1) * size]
                if kind == "max":
                    wy, wx = np.unravel_index(np.argmax(window), window.shape)
                    matrix[ch, y, x, ch, y * size + wy, x * size + wx] = 1.0
                else:
                    matrix[ch, y, x, ch, y * size : (y + 1) * size, x * size : (x + 1) * size] = (
                        1.0 / size**2
                    )
    return matrix.reshape(c * (h // size) * (w // size), -1), (c, h // size, w // size)


def linear_matrix(linear: nn.Linear):
    return linear.weight.detach().double().numpy(), linear.bias.detach().double().numpy()


def relu(v):
    return np.maximum(v, 0.0)


def excite(matrix, a_in, p_out, negate=False):
    """The rule itself: P_in = a_in * (W+^T (P_out / z+)), z+ = W+ a_in, 0 where z+ = 0."""
    positive = np.clip(-matrix if negate else matrix, 0.0, None)
    z = positive @ a_in
    ratio = np.divide(p_out, z, out=np.zeros_like(z), where=z != 0)
    return a_in * (positive.T @ ratio)


def split_sum(parts, p_out):
    """A sum passes P to its inputs in proportion to their values."""
    total = sum(parts)
    ratio = np.divide(p_out, total, out=np.zeros_like(total), where=total != 0)
    return [part * ratio for part in parts]


# --------------------------------------------------------------------------------------------
# A small network with every kind of layer the rule covers


class SmallNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU())
        self.conv1 = nn.Conv2d(3, 3, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(3)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(3, 3, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(3)
        self.maxpool = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(3, 4, 2)
        self.avgpool = nn.AvgPool2d(2)
        self.fc1 = nn.Linear(4, 6)
        self.fc2 = nn.Linear(6, 3)

    def forward(self, x):
        x = self.stem(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x  # functional residual sum, in place, as in torchvision's ResNet
        out = self.relu(out)
        out = self.maxpool(out)
        out = torch.relu(self.conv3(out))
        out = self.avgpool(out).flatten(1)
        out = torch.relu(self.fc1(out))
        return torch.relu(self.fc2(out))


def make_small_net(seed: int) -> SmallNet:
    torch.manual_seed(seed)
    net = SmallNet().double()
    for bn in (net.stem[1], net.bn1, net.bn2):
        bn.weight.data = torch.randn(3, dtype=torch.float64)  # negative scales too
        bn.bias.data = 0.1 * torch.randn(3, dtype=torch.float64)
        bn.running_mean.data = 0.1 * torch.randn(3, dtype=torch.float64)
        bn.running_var.data = torch.rand(3, dtype=torch.float64) + 0.5
    net.fc2.bias.data = torch.tensor([0.5, 0.5, -100.0], dtype=torch.float64)  # unit 2: inactive
    return net.eval()


def reference_small_net(net: SmallNet, image: torch.Tensor, unit: int, map_layer: str, contrast):
    """Forward and top-down pass of SmallNet for one image, in numpy float64."""
    a0 = image.detach().double().numpy().ravel()
    m0, b0, s0 = conv_matrix(net.stem[0], image.shape, net.stem[1])
    x = relu(m0 @ a0 + b0)
    m1, b1, s1 = conv_matrix(net.conv1, s0, net.bn1)
    r1 = relu(m1 @ x + b1)
    m2, b2, _ = conv_matrix(net.conv2, s1, net.bn2)
    y2 = m2 @ r1 + b2
    res = relu(y2 + x)
    mp, sp = pool_matrix(res, s0, 2, "max")
    pooled = mp @ res
    m3, b3, s3 = conv_matrix(net.conv3, sp)
    c3 = relu(m3 @ pooled + b3)
    ma, _ = pool_matrix(c3, s3, 2, "avg")
    avg = ma @ c3
    w1, bias1 = linear_matrix(net.fc1)
    h1 = relu(w1 @ avg + bias1)
    w2, bias2 = linear_matrix(net.fc2)
    out = relu(w2 @ h1 + bias2)

    p_out = np.zeros_like(out)
    if out[unit] <= 0:
        return np.zeros((sp if map_layer == "maxpool" else s0)[1:]), out
    p_out[unit] = 1.0
    p_h1 = excite(w2, h1, p_out)
    if contrast:
        p_h1 = p_h1 - excite(w2, h1, p_out, negate=True)
    p_avg = excite(w1, avg, p_h1)
    p_c3 = excite(ma, c3, p_avg)
    p_pooled = excite(m3, pooled, p_c3)
    p_res = mp.T @ p_pooled  # max pooling: all to the winner
    if map_layer == "maxpool":
        signal = p_pooled.reshape(sp)
    else:
        p_y2, p_x = split_sum([y2, x], p_res)
        p_r1 = excite(m2, r1, p_y2)
        p_x = p_x + excite(m1, x, p_r1)
        signal = p_x.reshape(s0)
    summed = signal.sum(axis=0)
    return (np.clip(summed, 0, None) if contrast else summed), out


# --------------------------------------------------------------------------------------------
# Model hygiene helpers


HOOK_DICTS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_pre_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_state_dict_hooks",
)


def hook_counts(model: nn.Module) -> dict:
    return {
        (name, attr): len(getattr(module, attr, {}))
        for name, module in model.named_modules()
        for attr in HOOK_DICTS
    }


def snapshot(model: nn.Module) -> dict:
    return {
        "state": {k: v.clone() for k, v in model.state_dict(keep_vars=False).items()},
        "training": {name: m.training for name, m in model.named_modules()},
        "requires_grad": {name: p.requires_grad for name, p in model.named_parameters()},
        "grads": {name: p.grad for name, p in model.named_parameters()},
        "hooks": hook_counts(model),
    }


def assert_unchanged(before: dict, model: nn.Module) -> None:
    after = snapshot(model)
    assert before["state"].keys() == after["state"].keys()
    for key, value in before["state"].items():
        assert torch.equal(value, after["state"][key]), key
    assert after["training"] == before["training"]
    assert after["requires_grad"] == before["requires_grad"]
    assert all(g is None for g in after["grads"].values())
    assert after["hooks"] == before["hooks"]


# --------------------------------------------------------------------------------------------
# Hand-computed maps


def test_hand_computed_linear_head():
    # One 1x1 conv (map layer) with two channels; the head weighs them 3 and 1 and one
    # position of channel 1 negatively.
    conv = nn.Conv2d(1, 2, 1)
    conv.weight.data = torch.tensor([[[[1.0]]], [[[2.0]]]])
    conv.bias.data = torch.tensor([0.0, 0.0])
    head = nn.Linear(8, 1)
    head.weight.data = torch.tensor([[3.0, 3.0, 3.0, 3.0, 1.0, 1.0, 1.0, -5.0]])
    head.bias.data = torch.tensor([0.5])  # ignored by the rule
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), head, nn.ReLU())
    image = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    # a = [1, 2, 3, 4 | 2, 4, 6, 8]; w+ a = 3 + 6 + 9 + 12 + 2 + 4 + 6 + 0 = 42.
    # Channel 0 gets 3 a / 42, channel 1 gets a / 42 (position 3: w+ = 0).
    expected = torch.tensor([[3 + 2, 6 + 4], [9 + 6, 12 + 0]]) / 42
    result = excitation_backprop(model, image, [(0, 0)], "0")
    torch.testing.assert_close(result.layer_maps[0], expected)
    torch.testing.assert_close(result.maps[0], expected)  # same size: no resampling
    torch.testing.assert_close(result.mass, torch.tensor([1.0]))
    assert result.active.tolist() == [True]


def test_hand_computed_pooling_and_hidden_layer():
    # Map layer: the 2x2 image itself (an identity conv). Max pooling gives 4 (the winner),
    # average pooling gives 2.5. Hidden units: h0 = 1 * 4 + 1 * 2.5 = 6.5, h1 = 2 * 2.5 = 5.
    # Output = 1 * h0 + 1 * h1 - 1 (bias) = 10.5.
    ident = nn.Conv2d(1, 1, 1, bias=False)
    ident.weight.data.fill_(1.0)

    class Pools(nn.Module):
        def forward(self, x):
            return torch.cat([nn.functional.max_pool2d(x, 2), nn.functional.avg_pool2d(x, 2)], 1)

    hidden = nn.Linear(2, 2, bias=False)
    hidden.weight.data = torch.tensor([[1.0, 1.0], [0.0, 2.0]])
    out = nn.Linear(2, 1)
    out.weight.data = torch.tensor([[1.0, 1.0]])
    out.bias.data = torch.tensor([-1.0])
    model = nn.Sequential(ident, Pools(), nn.Flatten(), hidden, nn.ReLU(), out)
    image = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    # P(h0) = 6.5 / 11.5, P(h1) = 5 / 11.5.
    # P(max) = 4 / 6.5 * P(h0); P(avg) = 2.5 / 6.5 * P(h0) + P(h1).
    p_h0, p_h1 = 6.5 / 11.5, 5 / 11.5
    p_max, p_avg = 4 / 6.5 * p_h0, 2.5 / 6.5 * p_h0 + p_h1
    # Max pooling: all to the pixel 4; average pooling: in proportion to 1, 2, 3, 4 (sum 10).
    expected = torch.tensor([[1 * p_avg / 10, 2 * p_avg / 10], [3 * p_avg / 10, 4 * p_avg / 10]])
    expected[1, 1] += p_max
    result = excitation_backprop(model, image, torch.tensor([[0, 0]]), "0")
    torch.testing.assert_close(result.layer_maps[0], expected)
    torch.testing.assert_close(result.mass, torch.tensor([1.0]))


def test_hand_computed_gradient_map():
    conv = nn.Conv2d(1, 1, 1, bias=False)
    conv.weight.data.fill_(2.0)
    head = nn.Linear(4, 1)
    head.weight.data = torch.tensor([[1.0, -1.0, 0.5, 0.0]])
    model = nn.Sequential(conv, nn.Flatten(), head)
    image = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    result = gradient_map(model, image, [(0, 0)], "0")
    # gradient x activation at the conv's output: w * (2 x).
    torch.testing.assert_close(result.layer_maps[0], torch.tensor([[2.0, -4.0], [3.0, 0.0]]))


# --------------------------------------------------------------------------------------------
# Against the float64 reference


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("map_layer", ["stem", "maxpool"])
def test_matches_float64_reference(seed, map_layer):
    net = make_small_net(seed)
    images = torch.rand(3, 2, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    targets = [(0, 0), (2, 1), (0, 1), (1, 0), (1, 2)]
    result = excitation_backprop(net, images, targets, map_layer)
    for t, (image, unit) in enumerate(targets):
        expected, out = reference_small_net(net, images[image], unit, map_layer, contrast=False)
        np.testing.assert_allclose(out, net(images[image : image + 1])[0].detach().numpy())
        np.testing.assert_allclose(result.layer_maps[t].numpy(), expected, rtol=1e-9, atol=1e-12)
        assert bool(result.active[t]) == (out[unit] > 0)
    assert result.maps.shape == (5, 6, 6)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("map_layer", ["stem", "maxpool"])
def test_probability_sums_to_one_without_biases(seed, map_layer):
    # A unit that is active through its bias alone has z+ = 0 and keeps its probability (the
    # rule ignores biases); without biases above the map layer nothing is lost.
    net = make_small_net(seed)
    for module in (net.conv1, net.conv2, net.conv3, net.fc1, net.fc2, net.bn1, net.bn2):
        module.bias.data.zero_()
    for bn in (net.bn1, net.bn2):
        bn.running_mean.zero_()
    images = torch.rand(3, 2, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    targets = [(i, unit) for i in range(3) for unit in range(3)]
    result = excitation_backprop(net, images, targets, map_layer)
    assert result.active.any()
    expected = torch.where(result.active, 1.0, 0.0).double()
    torch.testing.assert_close(result.mass, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_contrastive_matches_float64_reference(seed):
    net = make_small_net(seed)
    images = torch.rand(2, 2, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    targets = [(0, 0), (1, 1)]
    result = excitation_backprop(net, images, targets, "stem", contrastive=True)
    for t, (image, unit) in enumerate(targets):
        expected, _ = reference_small_net(net, images[image], unit, "stem", contrast=True)
        np.testing.assert_allclose(result.layer_maps[t].numpy(), expected, rtol=1e-9, atol=1e-12)
    assert (result.layer_maps >= 0).all()


def test_inactive_target_gives_zero_map_and_says_so():
    net = make_small_net(0)
    images = torch.rand(1, 2, 6, 6, dtype=torch.float64)
    result = excitation_backprop(net, images, [(0, 2), (0, 0)], "stem")
    assert result.active.tolist() == [False, True]
    assert torch.equal(result.maps[0], torch.zeros_like(result.maps[0]))
    assert torch.isfinite(result.maps).all()
    assert result.mass[0] == 0


def test_batched_equals_one_target_at_a_time():
    net = make_small_net(1)
    images = torch.rand(3, 2, 6, 6, dtype=torch.float64)
    targets = [(2, 0), (0, 1), (2, 1), (1, 0)]
    together = excitation_backprop(net, images, targets, "stem")
    for t, (image, unit) in enumerate(targets):
        alone = excitation_backprop(net, images[image : image + 1], [(0, unit)], "stem")
        torch.testing.assert_close(together.maps[t], alone.maps[0])


def test_works_in_float32_and_upsamples_to_the_input():
    images = torch.rand(2, 2, 6, 6, dtype=torch.float64)
    exact = excitation_backprop(make_small_net(2), images, [(0, 0), (1, 1)], "maxpool")
    result = excitation_backprop(
        make_small_net(2).float(), images.float(), [(0, 0), (1, 1)], "maxpool"
    )
    assert result.layer_maps.shape == (2, 3, 3)
    assert result.maps.shape == (2, 6, 6)
    assert result.maps.dtype == torch.float32
    torch.testing.assert_close(result.maps, exact.maps.float(), rtol=1e-4, atol=1e-6)


def test_reusable_object_equals_the_function_and_follows_weight_updates():
    net = make_small_net(3)
    images = torch.rand(2, 2, 6, 6, dtype=torch.float64)
    targets = [(0, 0), (1, 1), (1, 0)]
    explain = ExcitationBackprop(net, "stem")
    for _ in range(2):  # the second call uses the kept W+
        torch.testing.assert_close(
            explain(images, targets).maps, excitation_backprop(net, images, targets, "stem").maps
        )
    with torch.no_grad():
        net.fc1.weight.mul_(-1.0)  # an in-place update (as an optimizer step) is seen
    torch.testing.assert_close(
        explain(images, targets).maps, excitation_backprop(net, images, targets, "stem").maps
    )
    net.fc2.weight.data = net.fc2.weight.data * 2.0  # new data, same version: seen too
    torch.testing.assert_close(
        explain(images, targets).maps, excitation_backprop(net, images, targets, "stem").maps
    )
    assert explain.kept_bytes == (6 * 4 + 3 * 6) * 8  # W+ of fc1 and fc2, float64
    net.float()
    assert explain(images.float(), targets).maps.dtype == torch.float32
    with pytest.raises(ValueError, match="Valid names"):
        ExcitationBackprop(net, "nope")


def test_works_when_the_caller_turned_autograd_off():
    net = make_small_net(0)
    images = torch.rand(2, 2, 6, 6, dtype=torch.float64)
    expected = excitation_backprop(net, images, [(0, 0), (1, 1)], "stem").maps
    with torch.no_grad():
        torch.testing.assert_close(
            excitation_backprop(net, images, [(0, 0), (1, 1)], "stem").maps, expected
        )
        assert not torch.is_grad_enabled()
    with torch.inference_mode():
        inference_images = images.clone()
    with torch.inference_mode():
        torch.testing.assert_close(
            excitation_backprop(net, inference_images, [(0, 0), (1, 1)], "stem").maps, expected
        )


# --------------------------------------------------------------------------------------------
# The model is left exactly as it was


def test_model_unchanged_and_no_hook_left_after_success():
    net = make_small_net(0).float()
    net.train()
    net.bn1.eval()  # mixed flags must come back as they were
    net.stem.register_forward_hook(lambda *args: None)  # the user's own hook stays
    images = torch.rand(2, 2, 6, 6)
    net.eval()
    expected = net(images)
    net.train()
    net.bn1.eval()
    before = snapshot(net)
    excitation_backprop(net, images, [(0, 0), (1, 1)], "stem", contrastive=True)
    gradient_map(net, images, [(0, 0)], "stem")
    assert_unchanged(before, net)
    net.eval()
    torch.testing.assert_close(net(images), expected, rtol=0, atol=0)


def test_no_hook_left_after_an_error_in_the_forward_pass():
    net = make_small_net(0).float()
    net.fc1 = nn.Sequential(nn.Linear(4, 6), nn.LayerNorm(6))  # unsupported above the map layer
    before = snapshot(net)
    with pytest.raises(TypeError, match=r"fc1\.1.*LayerNorm"):
        excitation_backprop(net, torch.rand(1, 2, 6, 6), [(0, 0)], "stem")
    assert_unchanged(before, net)


class FailsInBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError("backward failed on purpose")


class BackwardBomb(nn.Module):
    def forward(self, x):
        return FailsInBackward.apply(x)


def test_no_hook_left_after_an_error_in_the_backward_pass():
    net = make_small_net(0).float()
    net.conv3 = nn.Sequential(BackwardBomb(), net.conv3)
    before = snapshot(net)
    for explain in (excitation_backprop, gradient_map):
        with pytest.raises(RuntimeError, match="on purpose"):
            explain(net, torch.rand(1, 2, 6, 6), [(0, 0)], "stem")
        assert_unchanged(before, net)


def test_no_hook_left_after_an_error_after_the_forward_pass():
    net = make_small_net(0).float()
    before = snapshot(net)
    with pytest.raises(ValueError, match="target units must be < 3"):
        excitation_backprop(net, torch.rand(1, 2, 6, 6), [(0, 7)], "stem")
    assert_unchanged(before, net)
    assert torch.is_grad_enabled()


# --------------------------------------------------------------------------------------------
# Bad input


def test_unknown_layer_lists_the_valid_names():
    net = make_small_net(0)
    with pytest.raises(ValueError, match=r"'stemm'.*Did you mean 'stem'.*Valid names:.*maxpool"):
        excitation_backprop(net, torch.rand(1, 2, 6, 6, dtype=torch.float64), [(0, 0)], "stemm")


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ([], "targets is empty"),
        ([0, 1, 2], r"shape \(n, 2\)"),
        ([(5, 0)], r"image indices must be in \[0, 1\)"),
        ([(0, -1)], "units must be >= 0"),
        ("ab", "pairs"),
    ],
)
def test_bad_targets(targets, message):
    net = make_small_net(0)
    with pytest.raises(ValueError, match=message):
        excitation_backprop(net, torch.rand(1, 2, 6, 6, dtype=torch.float64), targets, "stem")


def test_bad_inputs_and_layers():
    net = make_small_net(0)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        excitation_backprop(net, torch.rand(2, 6, 6, dtype=torch.float64), [(0, 0)], "stem")
    with pytest.raises(ValueError, match=r"'fc1' must output \(N, C, h, w\)"):
        excitation_backprop(net, torch.rand(1, 2, 6, 6, dtype=torch.float64), [(0, 0)], "fc1")
    with pytest.raises(ValueError, match="called more than once"):
        excitation_backprop(net, torch.rand(1, 2, 6, 6, dtype=torch.float64), [(0, 0)], "relu")


# --------------------------------------------------------------------------------------------
# torchvision models as the maps stage will use them: feature extractor + xNN encoder


class Explained(nn.Module):
    """DNN truncated at its feature layer, then a per-class encoder giving X-features."""

    def __init__(self, dnn: nn.Module, node: str, n_features: int):
        super().__init__()
        self.dnn = create_feature_extractor(dnn, return_nodes={node: "features"})
        self.encoder = nn.Sequential(
            nn.Linear(n_features, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 5)
        )
        self.encoder.append(nn.ReLU())
        for linear in self.encoder[0::2]:
            linear.bias.data.zero_()  # no unit active through its bias alone: no probability lost

    def forward(self, x):
        return self.encoder(self.dnn(x)["features"])


def torchvision_resnet():
    torch.manual_seed(0)
    resnet = torchvision.models.resnet.ResNet(torchvision.models.resnet.BasicBlock, [1, 1, 1, 1])
    for module in resnet.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.weight.data = torch.randn_like(module.weight)
            module.running_mean.data = 0.1 * torch.randn_like(module.running_mean)
            module.running_var.data = torch.rand_like(module.running_var) + 0.5
    return resnet.eval()


def reference_resnet_above_layer3(model: Explained, images, targets):
    """float64 reference from layer3's output: layer4 (a BasicBlock with downsample), the
    global average pool (1 x 1 here) and the encoder."""
    resnet = torchvision_resnet()
    resnet.load_state_dict({k: v for k, v in model.dnn.state_dict().items()}, strict=False)
    trunk = nn.Sequential(*list(resnet.children())[:7]).double()
    block = resnet.layer4[0]
    maps = []
    for image, unit in targets:
        a = trunk(images[image : image + 1].double())[0].detach()
        shape = tuple(a.shape)
        a = a.numpy().ravel()
        m1, b1, s1 = conv_matrix(block.conv1, shape, block.bn1)
        r1 = relu(m1 @ a + b1)
        m2, b2, _ = conv_matrix(block.conv2, s1, block.bn2)
        y2 = m2 @ r1 + b2
        md, bd, _ = conv_matrix(block.downsample[0], shape, block.downsample[1])
        yd = md @ a + bd
        out = relu(y2 + yd)  # 512 x 1 x 1 = the pooled features
        hidden = [out]
        for linear in model.encoder[0::2]:
            w, b = linear_matrix(linear)
            hidden.append(relu(w @ hidden[-1] + b))
        p = np.zeros(5)
        if hidden[-1][unit] <= 0:  # inactive X-feature: no map
            maps.append(np.zeros(shape[1:]))
            continue
        p[unit] = 1.0
        for linear, a_in in zip(reversed(model.encoder[0::2]), reversed(hidden[:-1]), strict=True):
            p = excite(linear_matrix(linear)[0], a_in, p)
        p_y2, p_yd = split_sum([y2, yd], p)
        p_a = excite(md, a, p_yd) + excite(m1, a, excite(m2, r1, p_y2))
        maps.append(p_a.reshape(shape).sum(axis=0))
    return np.stack(maps)


@pytest.mark.slow
def test_torchvision_resnet_feature_extractor_matches_reference():
    model = Explained(torchvision_resnet(), "flatten", 512).eval()
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    targets = [(0, 2), (1, 2), (0, 4), (1, 4), (0, 0)]
    before = snapshot(model)
    # layer3 is never called by the graph (it calls leaf modules): its output is the last call
    # of layer3.1.relu.
    result = excitation_backprop(model.double(), images.double(), targets, "dnn.layer3")
    expected = reference_resnet_above_layer3(model, images, targets)
    np.testing.assert_allclose(result.layer_maps.numpy(), expected, rtol=1e-7, atol=1e-12)
    assert result.active.tolist() == [True, True, True, True, False]
    expected_mass = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(result.mass, expected_mass)
    assert result.maps.shape == (5, 32, 32)
    model.float()
    assert hook_counts(model) == before["hooks"]


@pytest.mark.slow
def test_torchvision_vgg_with_inplace_relus_as_built():
    torch.manual_seed(0)
    vgg = torchvision.models.vgg11(weights=None).eval()
    model = Explained(vgg, "classifier.1", 4096).eval()
    sequential = nn.Sequential(
        vgg.features, vgg.avgpool, nn.Flatten(), vgg.classifier[0], vgg.classifier[1], model.encoder
    )
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    before = snapshot(model)
    expected_out = model(images)
    targets = [(0, 1), (1, 2), (1, 0)]
    # features.15 is pool4 of vgg11; features.14 is an in-place ReLU, features.13 a conv.
    for layer in ("features.15", "features.14", "features.13"):
        result = excitation_backprop(model, images, targets, f"dnn.{layer}")
        assert torch.isfinite(result.maps).all()
        assert result.active.any()
        torch.testing.assert_close(result.mass, result.active.float(), rtol=0, atol=1e-4)
        # The same modules as a plain Sequential: the graph module changes nothing.
        plain = excitation_backprop(sequential, images, targets, f"0.{layer.split('.')[1]}")
        torch.testing.assert_close(result.maps, plain.maps)
    assert_unchanged(before, model)
    torch.testing.assert_close(model(images), expected_out, rtol=0, atol=0)
