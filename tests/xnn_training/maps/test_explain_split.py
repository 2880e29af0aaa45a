"""``SplitModel``: torchvision models split at the map layer give the DNN's outputs and the maps
of the plain engine on the whole model (fast: random weights, small images)."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from xnn_training.maps.excitation_backprop import excitation_backprop
from xnn_training.maps.explain import SplitModel, default_map_layer
from xnn_training.nets.models import build_dnn, feature_extractor


class _Features(nn.Module):
    def __init__(self, model: nn.Module, layer: str) -> None:
        super().__init__()
        self.extractor = feature_extractor(model, layer)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.extractor(images)["features"]


@pytest.mark.parametrize(
    ("arch", "layer", "feature_layer"),
    [("resnet18", "layer3", "flatten"), ("vgg11", "features.15", "classifier.1")],
)
def test_split_equals_the_whole_model(arch, layer, feature_layer):
    torch.manual_seed(0)
    model = torchvision.models.get_model(arch, num_classes=4).eval()
    for module in model.modules():  # BatchNorm with non-trivial statistics and negative scales
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(-1.0, 1.0)
    split = SplitModel(model, layer, feature_layer).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected, got = feature_extractor(model, feature_layer)(images), split(images)
    torch.testing.assert_close(got["logits"], expected["logits"])
    torch.testing.assert_close(got["features"], expected["features"])

    encoder = nn.Sequential(nn.Linear(got["features"].shape[1], 8), nn.ReLU(), nn.Linear(8, 3))
    targets = [(0, 0), (0, 1), (1, 2)]
    whole = nn.Sequential(_Features(model, feature_layer), encoder).eval()
    want = excitation_backprop(whole, images, targets, f"0.extractor.graph.{layer}").layer_maps
    shared = nn.Sequential(nn.Identity(), split.features, encoder).eval()
    maps = excitation_backprop(shared, got["map"], targets, "0").layer_maps
    assert want.abs().max() > 0
    torch.testing.assert_close(maps, want)


def test_default_map_layers():
    assert default_map_layer("toycnn", build_dnn("toycnn", 3)) == "features.10"
    assert default_map_layer("vgg16", nn.Module()) == "features.23"
    assert default_map_layer("resnet34", nn.Module()) == "layer3"
    vgg11 = torchvision.models.vgg11()
    assert default_map_layer("vgg11", vgg11) == "features.15"  # its last-but-one max pooling


def test_unknown_and_unsuitable_layers_are_refused():
    model = build_dnn("toycnn", 3)
    with pytest.raises(ValueError, match=r"features\.1O.*Did you mean.*features\.10"):
        SplitModel(model, "features.1O", "classifier.1")
    with pytest.raises(ValueError, match="feature layer"):
        SplitModel(model, "classifier.1", "classifier.1")
    with pytest.raises(ValueError, match="after the feature layer"):
        SplitModel(model, "classifier.4", "classifier.1")
