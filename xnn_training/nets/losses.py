"""The xNN training loss (SRAE, Qi et al. 2017): faithfulness, sparse reconstruction, pull-away.

Every term returns one value per class (shape (C,)), so the total loss is a sum over classes
and each class's xNN gets exactly the gradient it would get if trained alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["LossWeights", "concept_alignment", "faithfulness", "pull_away", "sparse_reconstruction"]


@dataclass(frozen=True)
class LossWeights:
    """Weights of the three terms and the log penalty's q.

    The defaults are this project's, tuned on toybirds (see docs/training.md): with targets
    and features normalised, a strong reconstruction term (SRAE's a_rec = 100) would dominate
    faithfulness; a light one keeps the X-features informative, and the pull-away term spreads
    the score over 2-3 decorrelated X-features per image.
    """

    pred: float = 1.0
    rec: float = 0.2
    pull_away: float = 0.05
    q: float = 100.0
    pull_away_over: str = "features"

    def __post_init__(self) -> None:
        for name in ("pred", "rec", "pull_away", "q"):
            if getattr(self, name) < 0:
                raise ValueError(f"loss weight {name}: expected >= 0, got {getattr(self, name)}")
        if self.pull_away_over not in ("features", "images"):
            raise ValueError(
                f"pull_away_over: expected 'features' or 'images', got {self.pull_away_over!r}"
            )


def faithfulness(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error per class between xNN scores and DNN logits, both (B, C) -> (C,)."""
    return ((scores - targets) ** 2).mean(0)


def sparse_reconstruction(
    reconstruction: torch.Tensor, features: torch.Tensor, q: float = 100.0
) -> torch.Tensor:
    """SRAE's log penalty per class: ``(1/d) sum_j log(1 + q e_j)``.

    ``e_j`` is the batch-mean squared reconstruction error of feature j. ``reconstruction`` is
    (C, B, d), ``features`` (B, d). Large errors are penalised only logarithmically, so a few
    features may stay unexplained while most are reconstructed well.
    """
    errors = ((reconstruction - features.unsqueeze(0)) ** 2).mean(1)  # (C, d)
    return torch.log1p(q * errors).mean(-1)


def pull_away(terms: torch.Tensor, over: str = "features", eps: float = 1e-8) -> torch.Tensor:
    """EBGAN's pull-away term per class: mean over pairs i != j of ``cos(S_i, S_j)^2``.

    ``terms`` is S = w * x, (C, B, k). ``over="features"``: cosines between X-features (the
    columns of S, vectors over the batch); ``"images"``: between images (the rows). An all-zero
    vector has cosine 0 with everything.
    """
    vectors = terms.transpose(1, 2) if over == "features" else terms  # (C, n, m)
    unit = F.normalize(vectors, dim=-1, eps=eps)
    gram = unit @ unit.transpose(1, 2)  # (C, n, n)
    n = gram.shape[-1]
    if n < 2:
        return gram.new_zeros(gram.shape[0])
    off_diagonal = gram.pow(2).sum((1, 2)) - gram.diagonal(dim1=1, dim2=2).pow(2).sum(-1)
    return off_diagonal / (n * (n - 1))


def concept_alignment(
    terms: torch.Tensor, groups: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Mean squared error per class between grouped score terms and their targets.

    ``terms`` (C, B, k) are S = w * x on annotated images; ``groups`` (C, k, G) one-hot says
    which group each X-feature belongs to (a concept's own X-feature, or the free ones
    together); ``targets`` (C, B, G) what each group should contribute there (the contribution
    of the maps annotators named with that concept); ``mask`` (C, B, G) which entries count (a
    class's own annotated images). A class with no entry in the batch gets 0.
    """
    grouped = torch.bmm(terms, groups)  # (C, B, G)
    squared = (grouped - targets) ** 2 * mask
    return squared.sum((1, 2)) / mask.sum((1, 2)).clamp_min(1)
