"""Result regions in the shapes the configs' controls produce (``docs/formats.md``).

The ML backend writes its proposals with these, so a prediction is exactly what an annotator's
own annotation would be, and :func:`label_config.read_label_studio_export` reads both alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from label_config.controls import (
    BOARD_LIST,
    BOARD_RANKER,
    PER_MAP_CONCEPT,
    PER_MAP_OVERLAY,
    group_name_control,
)

__all__ = ["group_name_region", "ranker_region", "taxonomy_region"]


def ranker_region(buckets: Mapping[str, Sequence[str]]) -> dict:
    """A board's grouping: bucket name -> activation ids (``_`` for the unsorted column)."""
    return {
        "from_name": BOARD_RANKER,
        "to_name": BOARD_LIST,
        "type": "ranker",
        "value": {"ranker": {bucket: list(ids) for bucket, ids in buckets.items()}},
    }


def group_name_region(index: int, name: str) -> dict:
    """The name of board group ``index`` (1-based), as its TextArea gives it."""
    return {
        "from_name": group_name_control(index),
        "to_name": BOARD_LIST,
        "type": "textarea",
        "value": {"text": [name]},
    }


def taxonomy_region(concept: str) -> dict:
    """A per-map task's concept, as the Taxonomy gives it (a path of one element)."""
    return {
        "from_name": PER_MAP_CONCEPT,
        "to_name": PER_MAP_OVERLAY,
        "type": "taxonomy",
        "value": {"taxonomy": [[concept]]},
    }
