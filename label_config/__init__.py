"""Label Studio labeling configs for naming activation maps, generated from templates.

Two interfaces (see ``docs/formats.md`` for the task data and result shapes they imply):

- :func:`board_config`: set-wise, like the paper's interface. One task per category shows all of
  its maps; the annotator drags them from the Unsorted list into N generic groups or Discard and
  names each group.
- :func:`per_map_config`: one task per map (overlay and original image), a Taxonomy whose
  concepts the annotator adds in the UI and reuses, and a discard choice.

The templates (``board.xml.j2``, ``per_map.xml.j2`` and their ``.css``) are package data. They
use only ``{{ name }}`` placeholders, filled here with :class:`string.Template` semantics, so no
template engine is needed.
"""

from __future__ import annotations

import re
from importlib.resources import files
from string import Template

__all__ = [
    "BOARD_DISCARD",
    "BOARD_LIST",
    "BOARD_RANKER",
    "DEFAULT_GROUPS",
    "PER_MAP_CONCEPT",
    "PER_MAP_DISCARD",
    "board_config",
    "group_bucket",
    "group_name_control",
    "per_map_config",
]

DEFAULT_GROUPS = 12
BOARD_LIST = "maps"
BOARD_RANKER = "groups"
BOARD_DISCARD = "discard"
PER_MAP_CONCEPT = "concept"
PER_MAP_DISCARD = "discard"


class _Placeholders(Template):
    """``{{ name }}`` placeholders; ``$`` stays free for Label Studio's ``$task_field``."""

    pattern = r"""\{\{\s*(?:
        (?P<named>[a-z_]+)\s*\}\} |
        (?P<braced>(?!)) |
        (?P<escaped>(?!)) |
        (?P<invalid>)
    )"""
    flags = re.VERBOSE


def _render(name: str, **values: object) -> str:
    text = files("label_config").joinpath(name).read_text(encoding="utf-8")
    return _Placeholders(text).substitute({k: str(v) for k, v in values.items()})


def group_bucket(index: int) -> str:
    """Name of the ranker bucket of group ``index`` (1-based): ``g1``, ``g2``, ..."""
    return f"g{index}"


def group_name_control(index: int) -> str:
    """Name of the TextArea holding the name of group ``index`` (1-based): ``g1_name``, ..."""
    return f"{group_bucket(index)}_name"


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return value


def board_config(groups: int = DEFAULT_GROUPS, thumb_px: int = 96) -> str:
    """The board labeling config: Unsorted list, ``groups`` named groups and Discard.

    Parameters
    ----------
    groups
        Number of generic groups offered (buckets ``g1`` ... ``gN``), 1 to 50.
    thumb_px
        Width and height of a map thumbnail in pixels, 32 to 512.

    Returns
    -------
    str
        The XML config.
    """
    _check_int("groups", groups, 1, 50)
    _check_int("thumb_px", thumb_px, 32, 512)
    buckets = "\n".join(
        f'      <Bucket name="{group_bucket(i)}" title="Group {i}"/>' for i in range(1, groups + 1)
    )
    names = "\n".join(
        f'    <TextArea name="{group_name_control(i)}" toName="{BOARD_LIST}" '
        f'placeholder="Name of group {i}" maxSubmissions="1" editable="true" rows="1"/>'
        for i in range(1, groups + 1)
    )
    # Columns fit about three thumbnails side by side.
    css = _render("board.css", thumb_px=thumb_px, column_px=3 * thumb_px + 40)
    return _render("board.xml.j2", css=css, buckets=buckets, names=names)


def per_map_config(image_px: int = 360) -> str:
    """The per-map labeling config: overlay and image, a Taxonomy with Add, a discard choice.

    Parameters
    ----------
    image_px
        Maximum displayed width of each of the two images in pixels, 64 to 2048.

    Returns
    -------
    str
        The XML config.
    """
    _check_int("image_px", image_px, 64, 2048)
    return _render("per_map.xml.j2", css=_render("per_map.css"), image_px=image_px)
