"""Helpers for the backend tests: Label Studio results as annotators make them, and waiting.

The results are written out from docs/formats.md, not built with the backend's own code, so a
test of the backend cannot agree with a mistake in it.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def taxonomy(concept: str) -> list[dict]:
    """The result of a per-map task named ``concept``."""
    return [
        {
            "type": "taxonomy",
            "from_name": "concept",
            "to_name": "overlay",
            "value": {"taxonomy": [[concept]]},
        }
    ]


def ranker(buckets: dict[str, list[str]]) -> list[dict]:
    """The result of a board sorted into ``buckets`` (group names not given)."""
    return [
        {"type": "ranker", "from_name": "groups", "to_name": "maps", "value": {"ranker": buckets}}
    ]


def group_names(names: dict[int, str]) -> list[dict]:
    """The results naming a board's groups: ``{1: "beak"}`` is group 1's name box."""
    return [
        {
            "type": "textarea",
            "from_name": f"g{index}_name",
            "to_name": "maps",
            "value": {"text": [name]},
        }
        for index, name in names.items()
    ]


def wait_for(condition: Callable[[], bool], timeout: float = 20) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False
