"""The Label Studio contract: labeling configs, their names, results and the namings table.

Everything two stages must agree on about Label Studio is defined here once and imported by
``ls_backend`` (publish, the ML backend, collect) and ``analysis``:

- :mod:`label_config.controls`: control and bucket names (``groups``, ``g1`` ... ``gN``,
  ``discard``, the unsorted ``_``, ``concept``), making and parsing group names;
- :mod:`label_config.configs`: the board and per-map labeling configs (templates shipped as
  package data), and :func:`read_controls` to read a config's controls and group count;
- :mod:`label_config.predictions`: result regions in the shapes the controls produce, which
  the ML backend writes as predictions;
- :mod:`label_config.tasks`: the task data publish writes and the backend reads (its keys,
  which kind a task is, the maps it holds, the embedding codec);
- :mod:`label_config.results`: the one reader of Label Studio exports (results -> namings);
- :mod:`label_config.namings`: the tidy namings table's columns and statuses.

``docs/formats.md`` ("Namings", "Label Studio tasks and results") documents the contract.
The export reader needs pandas, so it is imported on first use (PEP 562): importing the names
alone stays cheap.
"""

from importlib import import_module
from typing import Any

from label_config.configs import (
    MODES,
    ConfigControls,
    board_config,
    per_map_config,
    read_controls,
)
from label_config.controls import (
    BOARD_DISCARD,
    BOARD_LIST,
    BOARD_RANKER,
    DEFAULT_GROUPS,
    MAX_GROUPS,
    PER_MAP_CONCEPT,
    PER_MAP_DISCARD,
    PER_MAP_DISCARD_CHOICE,
    PER_MAP_IMAGE,
    PER_MAP_OVERLAY,
    UNSORTED,
    group_bucket,
    group_name_control,
    group_of_bucket,
    group_of_name_control,
)
from label_config.namings import (
    DISCARDED,
    MACHINE,
    MADE_BY,
    MADE_BY_VALUES,
    NAMED,
    NAMINGS_COLUMNS,
    PERSON,
    SIMULATED,
    STATUSES,
    UNNAMED,
    unnamed_group_concept,
)
from label_config.predictions import group_name_region, ranker_region, taxonomy_region

__all__ = [
    "BOARD_DISCARD",
    "BOARD_LIST",
    "BOARD_RANKER",
    "DEFAULT_GROUPS",
    "DISCARDED",
    "MACHINE",
    "MADE_BY",
    "MADE_BY_VALUES",
    "MAX_GROUPS",
    "MODES",
    "NAMED",
    "NAMINGS_COLUMNS",
    "PERSON",
    "PER_MAP_CONCEPT",
    "PER_MAP_DISCARD",
    "PER_MAP_DISCARD_CHOICE",
    "PER_MAP_IMAGE",
    "PER_MAP_OVERLAY",
    "SIMULATED",
    "STATUSES",
    "UNNAMED",
    "UNSORTED",
    "ConfigControls",
    "ExportError",
    "board_config",
    "group_bucket",
    "group_name_control",
    "group_name_region",
    "group_of_bucket",
    "group_of_name_control",
    "per_map_config",
    "ranker_region",
    "read_controls",
    "read_label_studio_export",
    "taxonomy_region",
    "unnamed_group_concept",
]

_LAZY = {"ExportError": "label_config.results", "read_label_studio_export": "label_config.results"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'label_config' has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
