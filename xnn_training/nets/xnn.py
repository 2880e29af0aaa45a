"""The explanation network (xNN): one small network per class, all classes in one module.

For class c, the xNN maps the DNN's feature vector f (the feature layer, e.g. fc6 after its
ReLU) to k non-negative X-features and a score::

    x_c = relu(W3 relu(W2 relu(W1 f + b1) + b2) + b3)      the X-features (k values)
    s_c = w_c . x_c + b_c                                   regresses the DNN's logit of c

and a decoder mirroring the encoder reconstructs f from x_c (used only by the training loss).
All classes' weights are stacked along a leading class axis and computed with batched matrix
products, so 200 classes cost a few large products, not a Python loop over 200 models.
:meth:`XNN.encoder_for_class` gives class c's encoder as a plain ``nn.Sequential`` of
``nn.Linear`` / ``nn.ReLU`` modules, the network the maps stage runs Excitation Backprop
through, and :meth:`XNN.head_for_class` its head weights w_c.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["XNN", "BatchedLinear"]

ENCODER_BIAS_INIT = 0.5


class BatchedLinear(nn.Module):
    """``C`` independent linear layers: ``weight`` (C, out, in), ``bias`` (C, out).

    Input (C, B, in) gives (C, B, out). A 2-D input (B, in) is shared by all C layers and
    computed as one matrix product (the first encoder layer: every class reads the same f).
    """

    def __init__(self, classes: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(classes, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(classes, out_features))
        bound = 1 / math.sqrt(in_features)  # nn.Linear's default init, per class
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor, columns: torch.Tensor | None = None) -> torch.Tensor:
        weight, bias = self.weight, self.bias
        if columns is not None:  # only these outputs (a subset of reconstructed features)
            weight, bias = weight[:, columns], bias[:, columns]
        classes, out, inp = weight.shape
        if x.dim() == 2:
            y = x @ weight.reshape(classes * out, inp).T  # (B, C*out): one large product
            return y.view(x.shape[0], classes, out).transpose(0, 1) + bias[:, None, :]
        return torch.baddbmm(bias[:, None, :], x, weight.transpose(1, 2))

    def extra_repr(self) -> str:
        classes, out, inp = self.weight.shape
        return f"classes={classes}, in_features={inp}, out_features={out}"


class XNN(nn.Module):
    """All classes' xNNs (encoder, linear head, decoder) as one vectorised module.

    Parameters
    ----------
    in_features
        Length of the DNN feature vector f.
    classes
        Number of xNNs (one per explained class).
    k
        X-features per class (the paper: 5).
    hidden
        Widths of the encoder's hidden layers (SRAE used 800, 100 on VGG16's 4096-d fc6; the
        defaults fit small features and 200 classes on a CPU).
    dropout
        Dropout after the first encoder layer (training only), as in SRAE.
    """

    def __init__(
        self,
        in_features: int,
        classes: int,
        k: int = 5,
        hidden: Sequence[int] = (64, 16),
        dropout: float = 0.02,
    ) -> None:
        super().__init__()
        if k < 1 or classes < 1 or in_features < 1 or any(h < 1 for h in hidden):
            raise ValueError(
                f"XNN: sizes must be positive, got in_features={in_features}, "
                f"classes={classes}, k={k}, hidden={tuple(hidden)}"
            )
        self.in_features, self.classes, self.k = in_features, classes, k
        self.hidden = tuple(int(h) for h in hidden)
        widths = (in_features, *self.hidden, k)
        self.encoder = nn.ModuleList(
            BatchedLinear(classes, a, b) for a, b in itertools.pairwise(widths)
        )
        # Positive encoder biases start every unit active: a ReLU unit that starts dead on
        # a class's own images rarely recovers, and that class's xNN then cannot fit its scores.
        for layer in self.encoder:
            nn.init.constant_(layer.bias, ENCODER_BIAS_INIT)
        back = widths[::-1]
        self.decoder = nn.ModuleList(
            BatchedLinear(classes, a, b) for a, b in itertools.pairwise(back)
        )
        self.head_weight = nn.Parameter(torch.empty(classes, k))
        self.head_bias = nn.Parameter(torch.zeros(classes))
        nn.init.uniform_(self.head_weight, -1 / math.sqrt(k), 1 / math.sqrt(k))
        self.dropout = nn.Dropout(dropout)

    def encode(self, features: torch.Tensor) -> torch.Tensor:
        """X-features, (C, B, k), of features (B, in_features)."""
        h = features
        for index, layer in enumerate(self.encoder):
            h = torch.relu(layer(h))
            if index == 0:
                h = self.dropout(h)
        return h

    def score(self, x_features: torch.Tensor) -> torch.Tensor:
        """Scores (B, C) of X-features (C, B, k): ``w_c . x_c + b_c``."""
        return (x_features * self.head_weight[:, None, :]).sum(-1).T + self.head_bias

    def terms(self, x_features: torch.Tensor) -> torch.Tensor:
        """The score's terms ``w_ci x_ci``, (C, B, k)."""
        return x_features * self.head_weight[:, None, :]

    def reconstruct(
        self, x_features: torch.Tensor, columns: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The decoder's reconstruction of f, (C, B, in_features) or (C, B, len(columns))."""
        h = x_features
        for layer in self.decoder[:-1]:
            h = torch.relu(layer(h))
        return torch.relu(self.decoder[-1](h, columns))

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"x_features": (B, C, k), "scores": (B, C)}`` for features (B, in_features)."""
        x = self.encode(features)
        return {"x_features": x.transpose(0, 1), "scores": self.score(x)}

    def _check_class(self, c: int) -> None:
        if not 0 <= c < self.classes:
            raise IndexError(f"class index {c} out of range 0..{self.classes - 1}")

    def encoder_for_class(self, c: int) -> nn.Sequential:
        """Class c's encoder as ``nn.Sequential(Linear, ReLU, ..., Linear, ReLU)`` (copies).

        It maps f (B, in_features) to the X-features (B, k) exactly as :meth:`encode` does in
        evaluation mode (dropout is a training-time device and is left out).
        """
        self._check_class(c)
        layers: list[nn.Module] = []
        for batched in self.encoder:
            _, out, inp = batched.weight.shape
            linear = nn.Linear(inp, out)
            with torch.no_grad():
                linear.weight.copy_(batched.weight[c])
                linear.bias.copy_(batched.bias[c])
            layers += [linear, nn.ReLU()]
        return nn.Sequential(*layers).to(self.head_weight.device)

    def head_for_class(self, c: int) -> tuple[torch.Tensor, float]:
        """Class c's head: the weights w (k,) and the bias b of ``score = w . x + b``."""
        self._check_class(c)
        return self.head_weight[c].detach().clone(), float(self.head_bias[c].detach())

    @torch.no_grad()
    def fold_normalisation(
        self, input_scale: float, score_mean: torch.Tensor, score_std: torch.Tensor
    ) -> None:
        """Fold the training normalisation into the weights.

        Training sees ``f / input_scale`` and regresses ``(logit - score_mean) / score_std``; after
        folding, the module reads raw f and outputs raw logits (ReLU commutes with positive
        scales, so X-features and the decoder stay exact up to the same scales).
        """
        self.encoder[0].weight /= input_scale
        self.decoder[-1].weight *= input_scale
        self.decoder[-1].bias *= input_scale
        self.head_weight *= score_std[:, None]
        self.head_bias.copy_(self.head_bias * score_std + score_mean)

    @torch.no_grad()
    def unfold_normalisation(
        self, input_scale: float, score_mean: torch.Tensor, score_std: torch.Tensor
    ) -> None:
        """Undo :meth:`fold_normalisation` (to continue training a saved xNN)."""
        self.encoder[0].weight *= input_scale
        self.decoder[-1].weight /= input_scale
        self.decoder[-1].bias /= input_scale
        self.head_weight /= score_std[:, None]
        self.head_bias.copy_((self.head_bias - score_mean) / score_std)
