"""Defaults the library and the command line share, stated once.

Plain numbers with no imports, so ``xnaming --help`` can show them without loading numpy or
torch. The functions that use them (:func:`xnn_training.maps.significant.significant_features`,
:func:`xnn_training.maps.explain.explain`, :func:`xnn_training.make_toybirds`, ...) take them as
their
defaults, and ``xnaming data`` / ``xnaming explain`` as their options' defaults.
"""

from __future__ import annotations

__all__ = [
    "CORRECTION_EPOCHS",
    "CORRECTION_LR",
    "FEEDBACK_SHARE",
    "SIGNIFICANT_SHARE",
    "TOYBIRDS_CLASSES",
    "TOYBIRDS_IMAGE_SIZE",
    "TOYBIRDS_PER_CLASS",
]

SIGNIFICANT_SHARE = 0.9
"""Share of an image's positive class score its significant X-features cover (the paper's 90%)."""

TOYBIRDS_CLASSES = 12
"""Species in a generated toybirds data set (the paper's study had 12 bird categories)."""
TOYBIRDS_PER_CLASS = 150
"""Images per species."""
TOYBIRDS_IMAGE_SIZE = 64
"""Side of a toybirds image in pixels."""
FEEDBACK_SHARE = 0.2
"""Share of each toybirds class's training images put in the feedback split (annotators name
their maps to correct the classifier; plain training leaves them out)."""
CORRECTION_EPOCHS = 12
"""Fine-tuning epochs of a correction (``xnaming train dnn --from --feedback``)."""
CORRECTION_LR = 1e-3
"""Its starting learning rate (cosine decay, as ``train dnn``)."""
