"""The two labeling configs, generated from templates, and what a config holds, read back.

- :func:`board_config`: set-wise, like the paper's interface. One task per category shows all of
  its maps; the annotator drags them from the Unsorted list into N generic groups or Discard and
  names each group.
- :func:`per_map_config`: one task per map (overlay and original image), a Taxonomy whose
  concepts the annotator adds in the UI and reuses, and a discard choice.
- :func:`read_controls`: the controls and group count of a config (as Label Studio sends it to
  the ML backend), so readers need not assume them.

The templates (``board.xml.j2``, ``per_map.xml.j2`` and their ``.css``) are package data. They
use only ``{{ name }}`` placeholders, filled here with :class:`string.Template` semantics, so no
template engine is needed. Every control name comes from :mod:`label_config.controls`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from importlib.resources import files
from string import Template

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
    group_bucket,
    group_name_control,
    group_of_bucket,
)

__all__ = ["MODES", "ConfigControls", "board_config", "per_map_config", "read_controls"]

MODES = ("board", "per-map")
"""The two interfaces, as ``xnaming publish --mode`` names them: :func:`board_config` (the
default) and :func:`per_map_config`."""


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


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return value


def board_config(*, groups: int = DEFAULT_GROUPS, thumb_px: int = 96) -> str:
    """The board labeling config: Unsorted list, ``groups`` named groups and Discard.

    Parameters
    ----------
    groups
        Number of generic groups offered (buckets ``g1`` ... ``gN``), 1 to :data:`MAX_GROUPS`.
    thumb_px
        Width and height of a map thumbnail in pixels, 32 to 512.

    Returns
    -------
    str
        The XML config.
    """
    _check_int("groups", groups, 1, MAX_GROUPS)
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
    return _render(
        "board.xml.j2",
        css=css,
        list=BOARD_LIST,
        ranker=BOARD_RANKER,
        discard=BOARD_DISCARD,
        buckets=buckets,
        names=names,
    )


def per_map_config(*, image_px: int = 360) -> str:
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
    return _render(
        "per_map.xml.j2",
        css=_render("per_map.css"),
        image_px=image_px,
        overlay=PER_MAP_OVERLAY,
        image=PER_MAP_IMAGE,
        concept=PER_MAP_CONCEPT,
        discard=PER_MAP_DISCARD,
        discard_choice=PER_MAP_DISCARD_CHOICE,
    )


@dataclass(frozen=True)
class ConfigControls:
    """What a labeling config holds, read back by :func:`read_controls`.

    Parameters
    ----------
    controls
        Control name -> tag, in config order (``{"groups": "Ranker", "g1_name": "TextArea"}``):
        the tags with a ``toName``, i.e. those that make result regions.
    groups
        Group buckets (``g1`` ... ``gN``) of the board's Ranker; 0 when there is none.
    """

    controls: dict[str, str]
    groups: int

    @property
    def is_board(self) -> bool:
        """A board config: it has the board's Ranker."""
        return self.controls.get(BOARD_RANKER) == "Ranker"


def read_controls(config: str) -> ConfigControls:
    """The controls and group count of a labeling config, read from its XML.

    Parameters
    ----------
    config
        A labeling config, e.g. the ``label_config`` Label Studio sends to the ML backend.

    Returns
    -------
    ConfigControls

    Raises
    ------
    ValueError
        When ``config`` is not well-formed XML.
    TypeError
        When ``config`` is not a str.
    """
    if not isinstance(config, str):
        raise TypeError(f"config must be a str (the labeling config XML), got {type(config)}")
    try:
        # Python's expat (2.4+) refuses entity-expansion bombs, so an untrusted config is safe.
        root = ElementTree.fromstring(config)
    except ElementTree.ParseError as error:
        raise ValueError(f"the labeling config is not well-formed XML ({error})") from None
    controls = {
        element.attrib["name"]: element.tag
        for element in root.iter()
        if "name" in element.attrib and "toName" in element.attrib
    }
    groups = 0
    for ranker in root.iter("Ranker"):
        if ranker.attrib.get("name") == BOARD_RANKER:
            buckets = (bucket.attrib.get("name", "") for bucket in ranker.iter("Bucket"))
            groups = sum(group_of_bucket(name) is not None for name in buckets)
    return ConfigControls(controls=controls, groups=groups)
