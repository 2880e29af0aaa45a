"""Excitation Backprop activation maps (marginal winning probability), and the plain gradient map.

Excitation Backprop (Zhang et al. 2016) passes a probability P top-down from an output unit:
``P(a_j) = sum_i a_j w+_ij / (sum_k a_k w+_ik) * P(a_i)``, ``w+ = max(w, 0)``, biases ignored.
The map is P at a chosen layer, summed over channels and upsampled to the image.

How it is computed (docs/maps.md has the derivation): autograd propagates ``c = P / a`` instead
of P. For ReLU, max pooling, average pooling, flatten and residual sums the rule's ``c`` equals
the plain gradient, so only weighted layers need a changed backward:
``c_in = W+^T (c_out * v / z+)`` with ``v`` the layer's actual output and ``z+ = W+ a_in``.
Linear and Conv layers get that backward through a forward hook; a BatchNorm fed by a Conv is
folded into it (``W' = s * W``) inside the hook, never in the user's model. The map is ``a * c``.

The forward pass runs once per batch of images without autograd up to the map layer; there
the activation is copied once per target, so the layers above run per target and the backward
stops at the map layer.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["ActivationMaps", "ExcitationBackprop", "excitation_backprop", "gradient_map"]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class ActivationMaps:
    """Maps of a batch of targets, in target order.

    Attributes
    ----------
    maps : Tensor, shape (n_targets, H, W)
        The maps upsampled (bilinear) to the input's size; not normalised.
    layer_maps : Tensor, shape (n_targets, h, w)
        The maps at the map layer's resolution, summed over channels.
    active : Tensor of bool, shape (n_targets,)
        False where the target unit's output is 0 (an inactive X-feature): its map is all zero.
    mass : Tensor, shape (n_targets,)
        Sum of the map layer's signal before any clamping. Excitation Backprop: 1 for an active
        target (the winning probability is conserved), less where units above the map layer are
        active through their bias alone (their probability stays there). Contrastive: the
        target's probability minus its dual's.
    """

    maps: Tensor
    layer_maps: Tensor
    active: Tensor
    mass: Tensor


def excitation_backprop(
    model: nn.Module,
    inputs: Tensor,
    targets: Sequence[tuple[int, int]] | Tensor,
    map_layer: str,
    *,
    contrastive: bool = False,
) -> ActivationMaps:
    """Excitation Backprop maps from output units down to an intermediate layer.

    Parameters
    ----------
    model : nn.Module
        Any torch model built from Linear, Conv, BatchNorm, ReLU, pooling, flatten, dropout and
        additions (torchvision VGG and ResNet, ``create_feature_extractor`` graphs, the xNN
        encoder). It is left as it was: evaluated in eval mode, hooks removed, nothing changed.
    inputs : Tensor, shape (N, C, H, W)
        A batch of images, preprocessed as the model expects.
    targets : sequence of (image index, output unit) pairs, or a long Tensor of shape (n, 2)
        The units to explain; the unit indexes the flattened output of one image (for a model
        returning (N, k) X-features: the X-feature). An image may appear any number of times.
    map_layer : str
        Name of the module whose output is mapped (as in ``model.named_modules()``), e.g.
        ``"features.23"`` (VGG16 pool4). Every path from the input to the output must pass it.
        In a ``torch.fx`` graph a container that the graph does not call (ResNet's ``layer3``)
        stands for the last module call inside it.
    contrastive : bool, default False
        Contrastive Excitation Backprop: subtract the map of the dual unit (the target's weights
        in the last weighted layer negated) and keep the positive part.

    Returns
    -------
    ActivationMaps
        ``maps[t]`` is the map of ``targets[t]``.

    Raises
    ------
    ValueError
        On an unknown ``map_layer`` (the valid names are listed), inputs or targets of the wrong
        shape or out of range, or a map layer that is not spatial or not a cut of the network.
    TypeError
        If a module with parameters other than Linear, Conv or BatchNorm is above the map layer.

    See Also
    --------
    ExcitationBackprop : the same for many batches, faster from the second batch on.

    References
    ----------
    Zhang, Lin, Brandt, Shen, Sclaroff, "Top-down neural attention by excitation backprop",
    ECCV 2016.
    """
    return ExcitationBackprop(model, map_layer, contrastive=contrastive)(inputs, targets)


class ExcitationBackprop:
    """Excitation Backprop for many batches of one model whose weights stay as they are.

    ``ExcitationBackprop(model, map_layer)(inputs, targets)`` equals
    ``excitation_backprop(model, inputs, targets, map_layer)``. It keeps ``W+`` of the Linear
    layers between batches: VGG16's fc6 holds 400 MB of weights, whose positive part took longer
    to make than the products it is used in. It costs that memory (the size of the Linear
    weights above the map layer) while the object lives. Make a new one after changing the
    weights: a change through ``.data`` cannot be detected.

    Parameters
    ----------
    model, map_layer, contrastive
        As in :func:`excitation_backprop`; the layer name is checked at once.
    """

    def __init__(self, model: nn.Module, map_layer: str, *, contrastive: bool = False) -> None:
        _check_model_and_layer(model, map_layer)
        self.model = model
        self.map_layer = map_layer
        self.contrastive = contrastive
        self._positive_weights: dict[int, tuple[Tensor, tuple, Tensor]] = {}

    @property
    def kept_bytes(self) -> int:
        """Memory held by the kept ``W+`` of the Linear layers."""
        return sum(p.numel() * p.element_size() for _, _, p in self._positive_weights.values())

    def __call__(
        self, inputs: Tensor, targets: Sequence[tuple[int, int]] | Tensor
    ) -> ActivationMaps:
        """Maps of ``targets`` of the batch ``inputs``; see :func:`excitation_backprop`."""
        return _attribute(
            self.model,
            inputs,
            targets,
            self.map_layer,
            positive_weights=self._positive_weights,
            contrastive=self.contrastive,
        )


def gradient_map(
    model: nn.Module,
    inputs: Tensor,
    targets: Sequence[tuple[int, int]] | Tensor,
    map_layer: str,
) -> ActivationMaps:
    """Plain gradient x activation maps, computed the same way as :func:`excitation_backprop`.

    The gradient of the target unit with respect to the map layer's output, times that output,
    summed over channels and upsampled. Same arguments, batching and guarantees as
    :func:`excitation_backprop`; it is the baseline for its speed, and a simpler explanation.
    """
    return _attribute(model, inputs, targets, map_layer, positive_weights=None, contrastive=False)


# --------------------------------------------------------------------------------------------
# The propagation rule of weighted layers


@dataclass
class _Rule:
    """The rule of one weighted layer call: Linear, Conv (BatchNorm folded in) or BatchNorm.

    Above the map layer every row is a target and rows of the same image hold the same
    activations, so ``z+ = W+ x`` is computed once per image (``rows``) and shared (``inverse``).
    """

    layer: nn.Module
    rows: Tensor  # one row per distinct image
    inverse: Tensor  # row -> its distinct image
    cache: dict[int, tuple[Tensor, tuple, Tensor]]  # W+ of Linear layers, by id of the weight
    bn: _BatchNorm | None = None  # a BatchNorm folded into the conv ``layer``
    contrast: bool = False  # the last weighted layer of a contrastive run

    def weight(self) -> Tensor:
        """The effective weight: ``s * W`` for a conv with a folded BatchNorm of scale ``s``."""
        if isinstance(self.layer, _BatchNorm):
            return _bn_scale(self.layer).detach()
        weight = self.layer.weight.detach()
        if self.bn is not None:
            weight = weight * _bn_scale(self.bn).detach().view(-1, *[1] * (weight.dim() - 1))
        return weight

    def split(self, x: Tensor, signal: Tensor, negate: bool = False) -> Tensor:
        """``c_in = W+^T (signal / z+)``, ``z+ = W+ x``; 0 where ``z+ = 0``."""
        layer = self.layer
        if isinstance(layer, nn.Linear):
            return self._split_linear(x, signal, negate)
        weight = -self.weight() if negate else self.weight()
        if type(layer) is nn.Conv2d and layer.padding_mode == "zeros" and _numeric(layer.padding):
            positive = weight.clamp(min=0)
            options = (layer.stride, layer.padding, layer.dilation, layer.groups)
            z = F.conv2d(x[self.rows], positive, None, *options)[self.inverse]
            ratio = _ratio(signal, z)
            return torch.nn.grad.conv2d_input(x.shape, positive, ratio, *options)
        return self._split_autograd(x, signal, weight)

    def _split_linear(self, x: Tensor, signal: Tensor, negate: bool) -> Tensor:
        positive = (-self.weight()).clamp(min=0) if negate else self._positive_linear_weight()
        z = torch.matmul(x[self.rows], positive.T)[self.inverse]
        return torch.matmul(_ratio(signal, z), positive)

    def _positive_linear_weight(self) -> Tensor:
        weight = self.layer.weight
        # Valid while it is the same parameter, not updated in place (version) nor given new
        # data (data pointer: `.data = ...`, `.double()`).
        stamp = (weight._version, weight.data_ptr(), weight.dtype, weight.device)
        cached = self.cache.get(id(weight))
        if cached is not None and cached[0] is weight and cached[1] == stamp:
            return cached[2]
        positive = weight.detach().clamp(min=0)
        self.cache[id(weight)] = (weight, stamp, positive)
        return positive

    def _split_autograd(self, x: Tensor, signal: Tensor, weight: Tensor) -> Tensor:
        # Any other layer: the vector-Jacobian product of z+ = W+ x, on every row.
        positive = weight.clamp(min=0)
        with torch.enable_grad():
            x = x.detach().requires_grad_()
            if isinstance(self.layer, _BatchNorm):
                z = x * positive.view(1, -1, *[1] * (x.dim() - 2))
            else:
                z = self.layer._conv_forward(x, positive, None)
            (c_in,) = torch.autograd.grad(z, x, _ratio(signal, z.detach()))
        return c_in


def _numeric(padding: object) -> bool:
    return not isinstance(padding, str)


def _ratio(signal: Tensor, z: Tensor) -> Tensor:
    """``signal / z``, 0 where ``z = 0`` (0/0 and x/0 both give 0)."""
    return (signal / z).nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)


class _ExcitationLayer(torch.autograd.Function):
    """Identity on a layer's output ``v`` whose backward is the Excitation Backprop rule."""

    @staticmethod
    def forward(ctx, x: Tensor, v: Tensor, rule: _Rule) -> Tensor:
        ctx.save_for_backward(x, v)
        ctx.rule = rule
        # A fresh tensor: torchvision's in-place ReLUs may modify it; v stays saved intact.
        return v.clone()

    @staticmethod
    def backward(ctx, c_out: Tensor) -> tuple[Tensor, None, None]:
        x, v = ctx.saved_tensors
        rule: _Rule = ctx.rule
        signal = c_out * v  # P at this layer's output
        c_in = rule.split(x, signal)
        if rule.contrast:
            # The dual unit has the negated weights; P is linear in the signal, so subtracting
            # here equals subtracting the two maps at the map layer.
            c_in = c_in - rule.split(x, signal, negate=True)
        return c_in, None, None


def _bn_scale(bn: _BatchNorm) -> Tensor:
    if bn.running_var is None:
        raise TypeError(
            f"{type(bn).__name__} without running statistics (track_running_stats=False) uses "
            "batch statistics even in eval mode; Excitation Backprop needs a fixed affine layer"
        )
    scale = torch.rsqrt(bn.running_var + bn.eps)
    return scale * bn.weight if bn.weight is not None else scale


# --------------------------------------------------------------------------------------------
# One run: hooks, forward, backward


@dataclass
class _Session:
    map_layer: str
    map_module: nn.Module
    map_call: int  # which call of map_module gives the map layer's output (1 = the first)
    image_index: Tensor
    positive_weights: dict | None  # None: the plain gradient
    calls: int = 0  # calls of map_module so far
    rows: Tensor | None = None  # a row of each distinct image among the targets
    inverse: Tensor | None = None  # target row -> its distinct image
    leaf: Tensor | None = None  # the map layer's activation, one row per target
    above: bool = False  # the forward has passed the map layer
    rules: list[_Rule] = field(default_factory=list)
    conv_outputs: dict[int, tuple[Tensor, nn.Module, Tensor]] = field(default_factory=dict)


def _attribute(
    model: nn.Module,
    inputs: Tensor,
    targets: Sequence[tuple[int, int]] | Tensor,
    map_layer: str,
    *,
    positive_weights: dict | None,
    contrastive: bool,
) -> ActivationMaps:
    _check_model_and_layer(model, map_layer)
    map_module, map_call = _resolve_map_call(model, map_layer)
    inputs, targets = _check_inputs_and_targets(inputs, targets)
    image_index = targets[:, 0].to(inputs.device)
    session = _Session(map_layer, map_module, map_call, image_index, positive_weights)
    excitation = positive_weights is not None
    _, session.inverse = torch.unique(image_index, return_inverse=True)
    session.rows = torch.empty_like(session.inverse[: int(session.inverse.max()) + 1])
    session.rows[session.inverse] = torch.arange(len(image_index), device=image_index.device)

    # inference_mode(False): the backward needs autograd even when the caller turned it off.
    with torch.inference_mode(False), _eval_mode(model), _hooks(model, session):
        with torch.no_grad():  # the map layer's hook turns autograd on for the layers above
            try:
                outputs = model(inputs)
            except RuntimeError as error:
                if session.above and "size" in str(error):
                    raise ValueError(
                        f"the layers above map layer {map_layer!r} failed on one row per target "
                        f"({error}); the map layer must be a cut of the network (every path "
                        "from the input to the output passes through it), e.g. a VGG pooling "
                        "layer or a ResNet stage"
                    ) from error
                raise
        if session.leaf is None:
            raise ValueError(f"map layer {map_layer!r} was not called in the model's forward pass")
        if not isinstance(outputs, Tensor) or outputs.shape[0] != len(targets):
            raise TypeError(
                f"the model must return one tensor of shape (N, ...), got {type(outputs).__name__}"
            )
        if contrastive:
            if not session.rules:
                raise ValueError(
                    f"contrastive=True needs a Linear or Conv layer above map layer {map_layer!r}"
                )
            session.rules[-1].contrast = True

        flat = outputs.reshape(len(targets), -1)
        units = targets[:, 1].to(flat.device)
        if int(units.max()) >= flat.shape[1]:
            raise ValueError(
                f"target units must be < {flat.shape[1]} (the model's outputs per image), "
                f"got {int(units.max())}"
            )
        rows = torch.arange(len(targets), device=flat.device)
        value = flat.detach()[rows, units]
        active = value != 0
        seed = torch.zeros_like(flat)
        # Excitation Backprop starts with P = 1 at the target, i.e. c = P / a = 1 / a.
        start = torch.where(active, 1 / value, 0) if excitation else torch.ones_like(value)
        seed[rows, units] = start
        (grad,) = torch.autograd.grad(flat, session.leaf, seed, allow_unused=True)
        if grad is None:
            raise ValueError(f"the model's output does not depend on map layer {map_layer!r}")

    signal = (session.leaf.detach() * grad).sum(dim=1)  # P = a * c, summed over channels
    mass = signal.flatten(1).sum(dim=1)
    if contrastive:
        signal = signal.clamp(min=0)
    maps = F.interpolate(
        signal[:, None], size=inputs.shape[-2:], mode="bilinear", align_corners=False
    )[:, 0]
    return ActivationMaps(maps=maps, layer_maps=signal, active=active.cpu(), mass=mass)


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode (fixed BatchNorm, no dropout) for the run; every module's flag restored."""
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in flags:
            module.training = training


@contextmanager
def _hooks(model: nn.Module, session: _Session) -> Iterator[None]:
    """Register the run's forward hooks; remove every one of them, also on an exception."""
    handles = []
    try:
        handles.append(session.map_module.register_forward_hook(_capture_hook(session)))
        if session.positive_weights is not None:
            for name, module in model.named_modules():
                if module is not session.map_module and any(True for _ in module.parameters(False)):
                    handles.append(module.register_forward_hook(_rule_hook(session, name)))
        yield
    finally:
        for handle in handles:
            handle.remove()
        session.conv_outputs.clear()


def _capture_hook(session: _Session) -> Callable:
    def hook(module: nn.Module, args: tuple, output: Tensor) -> Tensor | None:
        session.calls += 1
        if session.calls < session.map_call:
            return None
        if session.above:
            raise ValueError(
                f"map layer {session.map_layer!r} is called more than once in the forward pass; "
                "choose a module that is called once"
            )
        if not isinstance(output, Tensor) or output.dim() != 4:
            shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
            raise ValueError(
                f"map layer {session.map_layer!r} must output (N, C, h, w) feature maps, got "
                f"{shape}; choose a convolutional or pooling layer"
            )
        session.leaf = output.detach().index_select(0, session.image_index).requires_grad_()
        session.above = True
        torch.set_grad_enabled(True)  # thread-local; the caller's no_grad() restores it
        # A copy, so that an in-place ReLU after the map layer leaves the leaf alone.
        return session.leaf.clone()

    return hook


def _rule_hook(session: _Session, name: str) -> Callable:
    def hook(module: nn.Module, args: tuple, output: Tensor) -> Tensor | None:
        if not session.above:
            return None
        x = args[0]
        if isinstance(module, (nn.Linear, *_CONVS)):
            rule = _Rule(module, session.rows, session.inverse, session.positive_weights)
        elif isinstance(module, _BatchNorm):
            _bn_scale(module)  # refuses a BatchNorm without running statistics, here and now
            produced = session.conv_outputs.get(id(x))
            if produced is not None and produced[0] is x:
                # Fold into the conv that produced x: the rule starts from the conv's input.
                _, conv, x = produced
                rule = _Rule(
                    conv, session.rows, session.inverse, session.positive_weights, bn=module
                )
            else:
                rule = _Rule(module, session.rows, session.inverse, session.positive_weights)
        else:
            raise TypeError(
                f"module {name!r} ({type(module).__name__}) has parameters and is above map layer "
                f"{session.map_layer!r}; Excitation Backprop supports Linear, Conv and BatchNorm "
                "layers there"
            )
        result = _ExcitationLayer.apply(x, output.detach(), rule)
        session.rules.append(rule)
        if isinstance(module, _CONVS):
            session.conv_outputs[id(result)] = (result, module, x)
        return result

    return hook


# --------------------------------------------------------------------------------------------
# Input checks


def _check_model_and_layer(model: nn.Module, map_layer: str) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    modules = dict(model.named_modules())
    if not isinstance(map_layer, str) or map_layer not in modules or map_layer == "":
        names = [name for name in modules if name]
        close = difflib.get_close_matches(str(map_layer), names, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"map_layer {map_layer!r} is not a module of {type(model).__name__}.{hint} "
            f"Valid names: {', '.join(names)}"
        )
    return modules[map_layer]


def _resolve_map_call(model: nn.Module, map_layer: str) -> tuple[nn.Module, int]:
    """The module call whose output is the map layer's output.

    A ``torch.fx`` graph (``create_feature_extractor``) calls leaf modules only: a container such
    as ResNet's ``layer3`` is never called itself. Its output is then that of the last module
    call inside it in the graph (for torchvision's blocks, the final ReLU, called twice per
    block, so the call count matters). A container whose forward ends with a function rather
    than a module call cannot be mapped this way: name a module inside it.
    """
    modules = dict(model.named_modules())
    parts = map_layer.split(".")
    for cut in range(len(parts) - 1, -1, -1):
        prefix, relative = ".".join(parts[:cut]), ".".join(parts[cut:])
        graph_module = modules[prefix]
        if not isinstance(graph_module, torch.fx.GraphModule):
            continue
        calls = [n.target for n in graph_module.graph.nodes if n.op == "call_module"]
        if relative in calls:
            break  # called directly: an ordinary hook
        inside = [i for i, target in enumerate(calls) if target.startswith(relative + ".")]
        if not inside:
            raise ValueError(
                f"map layer {map_layer!r} is never called by the graph module {prefix!r}; choose "
                "a module its graph calls"
            )
        last = calls[inside[-1]]
        full = f"{prefix}.{last}" if prefix else last
        return modules[full], calls[: inside[-1] + 1].count(last)
    return modules[map_layer], 1


def _check_inputs_and_targets(
    inputs: Tensor, targets: Sequence[tuple[int, int]] | Tensor
) -> tuple[Tensor, Tensor]:
    if not isinstance(inputs, Tensor) or inputs.dim() != 4 or not inputs.is_floating_point():
        got = (
            f"shape {tuple(inputs.shape)}, {inputs.dtype}"
            if isinstance(inputs, Tensor)
            else (type(inputs).__name__)
        )
        raise ValueError(f"inputs must be a float tensor of shape (N, C, H, W), got {got}")
    example = "e.g. [(0, 3), (0, 1)] for units 3 and 1 of image 0"
    try:
        pairs = torch.as_tensor(targets, dtype=torch.long)
    except (TypeError, ValueError, RuntimeError) as error:
        raise ValueError(f"targets must be (image index, output unit) pairs, {example}") from error
    if pairs.numel() == 0:
        raise ValueError(f"targets is empty: give at least one pair, {example}")
    if pairs.dim() != 2 or pairs.shape[1] != 2:
        raise ValueError(
            f"targets must be (image index, output unit) pairs of shape (n, 2), {example}; "
            f"got shape {tuple(pairs.shape)}"
        )
    images, units = pairs[:, 0], pairs[:, 1]
    if images.min() < 0 or images.max() >= len(inputs):
        raise ValueError(
            f"target image indices must be in [0, {len(inputs)}) (the batch), got "
            f"{images.min().item()}..{images.max().item()}"
        )
    if units.min() < 0:
        raise ValueError(f"target units must be >= 0, got {units.min().item()}")
    return inputs, pairs
