"""DNN construction: toycnn's layout, torchvision by name, local weights, feature layers."""

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from xnn_training.nets.models import (
    TOYCNN_MAP_LAYER,
    ToyCNN,
    build_dnn,
    default_feature_layer,
    feature_extractor,
)


def test_toycnn_is_built_from_hookable_standard_modules():
    model = build_dnn("toycnn", 5)
    allowed = (nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.Linear, nn.Dropout, nn.AdaptiveAvgPool2d,
               nn.Sequential, ToyCNN)  # fmt: skip
    assert all(isinstance(m, allowed) for m in model.modules())
    assert not any(getattr(m, "inplace", False) for m in model.modules())
    pools = [n for n, m in model.named_modules() if isinstance(m, nn.MaxPool2d)]
    assert pools[-2] == TOYCNN_MAP_LAYER  # the last-but-one pooling, like VGG16 pool4
    assert default_feature_layer(model, "toycnn") == "classifier.1"
    out = feature_extractor(model.eval(), "classifier.1")(torch.rand(2, 3, 48, 48))
    assert out["features"].shape == (2, 256)
    assert out["logits"].shape == (2, 5)
    assert bool((out["features"] >= 0).all())


def test_feature_extraction_leaves_the_model_as_it_was():
    model = build_dnn("toycnn", 3).eval()
    x = torch.rand(2, 3, 32, 32)
    before = model(x)
    logits = feature_extractor(model, "classifier.1")(x)["logits"]
    torch.testing.assert_close(logits, before)
    torch.testing.assert_close(model(x), before)


def test_torchvision_architectures_by_name_and_their_feature_layers():
    vgg = build_dnn("vgg11", 7)
    assert vgg.classifier[6].out_features == 7
    assert default_feature_layer(vgg, "vgg11") == "classifier.1"
    resnet = build_dnn("resnet18", 4)
    assert resnet.fc.out_features == 4
    assert default_feature_layer(resnet, "resnet18") == "flatten"


def test_unknown_architecture_and_layer_are_named():
    with pytest.raises(ValueError, match=r"unknown architecture 'vgg99'.*resnet50"):
        build_dnn("vgg99", 3)
    with pytest.raises(ValueError, match=r"'fc9' is not a node.*classifier.1"):
        feature_extractor(build_dnn("toycnn", 3), "fc9")


def test_local_weights_load_and_the_head_is_resized(tmp_path):
    torch.manual_seed(0)
    source = ToyCNN(10)  # e.g. pretrained on 10 other classes
    path = tmp_path / "w.safetensors"
    save_file(source.state_dict(), str(path))
    model = build_dnn("toycnn", 4, path)
    assert model.classifier[6].out_features == 4
    torch.testing.assert_close(model.features[0].weight, source.features[0].weight)
    torch.save(source.state_dict(), tmp_path / "w.pth")
    torch.testing.assert_close(build_dnn("toycnn", 4, tmp_path / "w.pth").classifier[0].weight,
                               source.classifier[0].weight)  # fmt: skip


def test_weights_that_do_not_fit_name_missing_and_unexpected_keys(tmp_path):
    state = ToyCNN(4).state_dict()
    state.pop("features.0.bias")
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.safetensors"
    save_file(state, str(path))
    with pytest.raises(ValueError, match=r"missing keys \['features.0.bias'\].*extra.weight"):
        build_dnn("toycnn", 4, path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_dnn("toycnn", 4, tmp_path / "none.pt")
