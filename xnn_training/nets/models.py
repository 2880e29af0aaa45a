"""The DNN: torchvision classification architectures by name, or ``toycnn`` for CPU demos.

``toycnn`` is VGG in miniature, built from standard modules only (``nn.Conv2d``, ``nn.ReLU``
modules (not in place), ``nn.MaxPool2d``, ``nn.Linear``, ``nn.Dropout``) with torchvision's
names, so Excitation Backprop hooks can attach to every layer:

============  =======================================================================
``features``  conv-relu-pool (``features.2``), conv-relu-pool (``features.5``),
              conv-relu-conv-relu-pool (``features.10``, the map layer: the last-but-one
              pooling, like VGG16's pool4 ``features.23``), conv-relu-pool (``features.13``)
``avgpool``   ``AdaptiveAvgPool2d((2, 2))`` (any input size >= 32 works)
``classifier`` fc6 ``classifier.0``, ReLU ``classifier.1`` (the xNN's feature layer),
              Dropout, fc7 ``classifier.3``, ReLU, Dropout, logits ``classifier.6``
============  =======================================================================

The xNN's feature layer is read with :func:`torchvision.models.feature_extraction.
create_feature_extractor`, never by editing the model.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision import models
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

__all__ = [
    "MAP_LAYERS",
    "TOYCNN_MAP_LAYER",
    "ToyCNN",
    "build_dnn",
    "default_feature_layer",
    "feature_extractor",
    "load_weights_file",
]

TOYCNN_MAP_LAYER = "features.10"
"""toycnn's equivalent of VGG16 pool4 (``features.23``): its last-but-one max pooling."""

MAP_LAYERS = {"toycnn": TOYCNN_MAP_LAYER, "vgg16": "features.23", "resnet50": "layer3"}
"""Default Excitation Backprop map layers, for the maps stage."""


class ToyCNN(nn.Module):
    """A small VGG-like CNN: 5 convolutions in 4 blocks, then fc6 -> fc7 -> logits.

    Parameters
    ----------
    num_classes
        Number of logits.
    widths
        Channels of the 5 convolutions.
    fc
        Width of fc6 and fc7 (the xNN's feature vector has this many values).
    dropout
        Dropout after fc6 and fc7, as in VGG.
    """

    def __init__(
        self,
        num_classes: int,
        widths: tuple[int, ...] = (32, 64, 96, 96, 128),
        fc: int = 256,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = widths

        def conv(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU()]

        pool = nn.MaxPool2d
        self.features = nn.Sequential(
            *conv(3, c1), pool(2),  # 0-2
            *conv(c1, c2), pool(2),  # 3-5
            *conv(c2, c3), *conv(c3, c4), pool(2),  # 6-10: the map layer (pool4 equivalent)
            *conv(c4, c5), pool(2),  # 11-13
        )  # fmt: skip
        self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
        self.classifier = nn.Sequential(
            nn.Linear(c5 * 4, fc), nn.ReLU(), nn.Dropout(dropout),  # fc6 0-2
            nn.Linear(fc, fc), nn.ReLU(), nn.Dropout(dropout),  # fc7 3-5
            nn.Linear(fc, num_classes),  # logits 6
        )  # fmt: skip
        # He initialisation keeps the signal's scale through the ReLU layers; without
        # BatchNorm, torch's default init makes this network learn very slowly.
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def _torchvision_names() -> list[str]:
    return sorted(models.list_models(module=models))


def build_dnn(arch: str, num_classes: int, weights: str | Path | None = None) -> nn.Module:
    """Build ``arch`` with a ``num_classes`` head, optionally from a local weights file.

    Parameters
    ----------
    arch
        ``"toycnn"`` or a torchvision classification model name (``vgg16``, ``resnet50``, ...).
    num_classes
        Logits of the new head.
    weights
        A local state dict (``.safetensors``, or ``.pt``/``.pth`` read with
        ``weights_only=True``), e.g. torchvision's ImageNet weights saved beforehand. Its head may
        have any number of classes: the head is resized to ``num_classes`` (new head weights are
        freshly initialised unless the file's head already has ``num_classes`` outputs).

    Raises
    ------
    ValueError
        Unknown architecture (the message lists the known ones), or a weights file that does
        not fit (it names the missing and unexpected keys).
    FileNotFoundError
        A weights file that does not exist.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes: expected at least 2 classes, got {num_classes}")
    if arch == "toycnn":
        model: nn.Module = ToyCNN(num_classes)
    elif arch in _torchvision_names():
        model = models.get_model(arch, weights=None)
    else:
        raise ValueError(
            f"arch: unknown architecture {arch!r}; expected 'toycnn' or a torchvision "
            f"classification model: {', '.join(_torchvision_names())}"
        )
    if weights is not None:
        state = load_weights_file(weights)
        head_name, head = _head(model)
        head_keys = {f"{head_name}.weight", f"{head_name}.bias"}
        file_head = state.get(f"{head_name}.weight")
        if file_head is not None and file_head.shape[0] != head.out_features:
            # The file's head has another class count: resize ours to it for loading.
            _replace_head(model, file_head.shape[0])
        expected = set(model.state_dict())
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unexpected:
            raise ValueError(
                f"weights: {weights} does not fit {arch}: missing keys {missing[:10]}"
                f"{' ...' if len(missing) > 10 else ''}, unexpected keys {unexpected[:10]}"
                f"{' ...' if len(unexpected) > 10 else ''}"
            )
        wrong = [
            f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
            for k, v in model.state_dict().items()
            if k not in head_keys and state[k].shape != v.shape
        ]
        if wrong:
            raise ValueError(f"weights: {weights} does not fit {arch}: shapes {wrong[:5]}")
        model.load_state_dict(state)
    if _head(model)[1].out_features != num_classes:
        _replace_head(model, num_classes)
    return model


def load_weights_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` or from a torch file, loaded without pickles."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights: {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"weights: cannot read {path} as a torch state dict: {error}") from error
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"weights: {path} holds a {type(state).__name__}, not a state dict")
    return state


def _head(model: nn.Module) -> tuple[str, nn.Linear]:
    """The classifier head: the last ``nn.Linear`` module (VGG ``classifier.6``, ResNet ``fc``)."""
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no nn.Linear head to resize")
    return linears[-1]


def _replace_head(model: nn.Module, num_classes: int) -> None:
    name, head = _head(model)
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    new = nn.Linear(head.in_features, num_classes, bias=head.bias is not None)
    setattr(parent, child, new)


def default_feature_layer(model: nn.Module, arch: str) -> str:
    """The xNN's feature layer: the ReLU after the first fully-connected layer, if the
    classifier has a fully-connected stack (VGG, AlexNet, toycnn: ``classifier.1``), otherwise
    the pooled features feeding the head (ResNet: ``flatten``)."""
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if len(linears) >= 2:
        modules = dict(model.named_modules())
        first = linears[0]
        parent, _, index = first.rpartition(".")
        after = f"{parent}.{int(index) + 1}" if index.isdigit() else None
        if after in modules and isinstance(modules[after], nn.ReLU):
            return after
        return first
    _, eval_nodes = get_graph_node_names(model)
    head = linears[-1]
    before = eval_nodes[eval_nodes.index(head) - 1] if head in eval_nodes else None
    if before is None:
        raise ValueError(f"{arch}: cannot find the layer feeding the head {head!r}")
    return before


def feature_extractor(model: nn.Module, layer: str, logits: str | None = None) -> nn.Module:
    """A module returning ``{"features": <layer output flattened>, "logits": ...}``.

    Raises
    ------
    ValueError
        When ``layer`` is not a node of the model (the message lists the valid names).
    """
    _, eval_nodes = get_graph_node_names(model)
    if layer not in eval_nodes:
        raise ValueError(
            f"layer: {layer!r} is not a node of the model; valid names: {', '.join(eval_nodes)}"
        )
    output = logits or eval_nodes[-1]
    return _FeaturesAndLogits(
        create_feature_extractor(model, {layer: "features", output: "logits"})
    )


class _FeaturesAndLogits(nn.Module):
    def __init__(self, graph: nn.Module) -> None:
        super().__init__()
        self.graph = graph

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.graph(x)
        return {"features": torch.flatten(out["features"], 1), "logits": out["logits"]}
