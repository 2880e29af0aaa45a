"""The names of the labeling configs' controls and buckets: the wire format's vocabulary.

Label Studio identifies every result region by the ``name`` of the control that made it
(``from_name``) and the object it points at (``to_name``); a board's ranker result is keyed by
bucket name. These names are written into the configs (:mod:`label_config.configs`), read back
from exports (:mod:`label_config.results`) and written into the backend's predictions
(:mod:`label_config.predictions`); they are defined here once. ``docs/formats.md`` ("Label
Studio tasks and results") documents them.
"""

from __future__ import annotations

import re

__all__ = [
    "BOARD_DISCARD",
    "BOARD_LIST",
    "BOARD_RANKER",
    "DEFAULT_GROUPS",
    "MAX_GROUPS",
    "PER_MAP_CONCEPT",
    "PER_MAP_DISCARD",
    "PER_MAP_DISCARD_CHOICE",
    "PER_MAP_IMAGE",
    "PER_MAP_OVERLAY",
    "UNSORTED",
    "group_bucket",
    "group_name_control",
    "group_of_bucket",
    "group_of_name_control",
]

DEFAULT_GROUPS = 12
"""Group buckets a board offers unless told otherwise (the paper's interface had about 12)."""
MAX_GROUPS = 50

# Board (one task per category).
BOARD_LIST = "maps"
"""The List of the board's maps; also the Ranker's unsorted column."""
BOARD_RANKER = "groups"
"""The Ranker whose buckets are the groups and Discard."""
BOARD_DISCARD = "discard"
"""The Ranker bucket of discarded maps."""
UNSORTED = "_"
"""The key Label Studio gives the List's own (unsorted) column in a ranker result."""

# Per map (one task per activation).
PER_MAP_OVERLAY = "overlay"
"""The Image showing the map's overlay; the controls point at it."""
PER_MAP_IMAGE = "image"
"""The Image showing the original image."""
PER_MAP_CONCEPT = "concept"
"""The Taxonomy of concepts."""
PER_MAP_DISCARD = "discard"
"""The Choices control with the single choice :data:`PER_MAP_DISCARD_CHOICE`."""
PER_MAP_DISCARD_CHOICE = "discard"

_GROUP_BUCKET = re.compile(r"^g([1-9][0-9]*)$")
_GROUP_NAME = re.compile(r"^g([1-9][0-9]*)_name$")


def group_bucket(index: int) -> str:
    """Name of the ranker bucket of group ``index`` (1-based): ``g1``, ``g2``, ..."""
    return f"g{index}"


def group_name_control(index: int) -> str:
    """Name of the TextArea holding the name of group ``index`` (1-based): ``g1_name``, ..."""
    return f"{group_bucket(index)}_name"


def group_of_bucket(name: str) -> int | None:
    """The group index of bucket ``name`` (``"g3"`` -> 3); ``None`` for any other name."""
    match = _GROUP_BUCKET.match(name)
    return int(match.group(1)) if match else None


def group_of_name_control(name: str) -> int | None:
    """The group index of TextArea ``name`` (``"g3_name"`` -> 3); ``None`` for any other name."""
    match = _GROUP_NAME.match(name)
    return int(match.group(1)) if match else None
