"""Defaults the analysis and ``xnaming analyze`` share, stated once.

Plain numbers with no imports, so ``xnaming --help`` shows them without loading pandas.
"""

from __future__ import annotations

__all__ = ["D2_TIME_LIMIT", "DISTRUST_THRESHOLD", "MIN_IMAGES"]

MIN_IMAGES = 3
"""Concepts covering fewer distinct images (per annotator and category) are dropped: the paper
removed "clusters with less than 3 images"."""
D2_TIME_LIMIT = 5.0
"""Seconds the exact D = 2 matching may spend per connected component of a pair's graph."""
DISTRUST_THRESHOLD = 0.5
"""A category is flagged among decisions to distrust when this share of its test decisions is
distrusted (:mod:`analysis.measures.distrust`)."""
