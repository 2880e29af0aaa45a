"""The labeling configs: generated from templates, valid for the SDK's LabelInterface.

The names are spelled out literally here: this is where the wire format (docs/formats.md) is
pinned, so a changed constant in label_config fails here rather than silently changing it.
"""

from __future__ import annotations

import pytest
from label_studio_sdk.label_interface import LabelInterface

import label_config
from label_config import (
    board_config,
    group_name_region,
    group_of_bucket,
    group_of_name_control,
    per_map_config,
    ranker_region,
    read_controls,
    taxonomy_region,
)
from ls_backend.backend.naming import MapInfo, board_prediction


def _controls(config: str) -> dict[str, str]:
    interface = LabelInterface(config)
    return {c.name: c.tag for c in interface.controls}


@pytest.mark.parametrize("groups", [1, 3, 12, 30])
def test_board_has_n_groups_discard_and_a_name_per_group(groups: int) -> None:
    config = board_config(groups=groups)
    LabelInterface(config).validate()
    controls = _controls(config)
    assert controls.pop("groups") == "Ranker"
    assert controls == {f"g{i}_name": "TextArea" for i in range(1, groups + 1)}
    assert config.count("<Bucket ") == groups + 1
    assert '<Bucket name="discard"' in config
    assert 'title="Unsorted"' in config
    assert "$category" in config


def test_board_default_is_twelve_groups_and_thumb_size_is_a_parameter() -> None:
    assert board_config().count('<TextArea name="g') == 12
    assert "width: 150px" in board_config(thumb_px=150)
    # '>' would be escaped by Label Studio's sanitiser inside <Style>: descendant selectors only.
    style = board_config().split("<Style>")[1].split("</Style>")[0]
    assert ">" not in style


def test_per_map_has_taxonomy_with_add_and_discard() -> None:
    config = per_map_config()
    LabelInterface(config).validate()
    assert _controls(config) == {"concept": "Taxonomy", "discard": "Choices"}
    assert 'legacy="true"' in config
    assert 'value="$overlay"' in config
    assert 'value="$image"' in config


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: board_config(groups=0), ValueError),
        (lambda: board_config(groups=2.5), TypeError),
        (lambda: board_config(thumb_px=8), ValueError),
        (lambda: per_map_config(image_px=True), TypeError),
    ],
)
def test_bad_parameters_are_refused(call, error) -> None:
    with pytest.raises(error):
        call()


def test_backend_board_prediction_is_valid_for_the_config() -> None:
    maps = [MapInfo(f"i{i}:x{i % 2}", "c", i % 2, (0.2, 0.2)) for i in range(6)]
    result = board_prediction(maps, [], groups=12)
    assert LabelInterface(board_config()).validate_prediction({"result": result})


def test_the_names_are_the_documented_wire_format() -> None:
    names = {
        "BOARD_LIST": "maps",
        "BOARD_RANKER": "groups",
        "BOARD_DISCARD": "discard",
        "UNSORTED": "_",
        "PER_MAP_OVERLAY": "overlay",
        "PER_MAP_IMAGE": "image",
        "PER_MAP_CONCEPT": "concept",
        "PER_MAP_DISCARD": "discard",
        "PER_MAP_DISCARD_CHOICE": "discard",
        "NAMED": "named",
        "UNNAMED": "unnamed",
        "DISCARDED": "discarded",
        "SIMULATED": "simulated",
    }
    assert {name: getattr(label_config, name) for name in names} == names
    assert label_config.NAMINGS_COLUMNS == (
        "annotator",
        "category",
        "activation_id",
        "concept",
        "status",
    )
    assert label_config.group_bucket(3) == "g3"
    assert label_config.group_name_control(3) == "g3_name"
    assert label_config.unnamed_group_concept(3) == "group 3"


@pytest.mark.parametrize(
    ("name", "bucket", "control"),
    [("g1", 1, None), ("g12", 12, None), ("g3_name", None, 3), ("g0", None, None),
     ("discard", None, None), ("_", None, None), ("g", None, None), ("G2", None, None),
     ("g2_names", None, None), ("xg2", None, None)],
)  # fmt: skip
def test_group_names_parse_back(name: str, bucket: int | None, control: int | None) -> None:
    assert group_of_bucket(name) == bucket
    assert group_of_name_control(name) == control


@pytest.mark.parametrize("groups", [1, 5, 12, 50])
def test_read_controls_of_a_board_gives_its_group_count(groups: int) -> None:
    read = read_controls(board_config(groups=groups))
    assert read.is_board
    assert read.groups == groups
    assert read.controls == {
        "groups": "Ranker",
        **{f"g{i}_name": "TextArea" for i in range(1, groups + 1)},
    }


def test_read_controls_of_a_per_map_config_and_of_garbage() -> None:
    read = read_controls(per_map_config())
    assert not read.is_board
    assert read.groups == 0
    assert read.controls == {"concept": "Taxonomy", "discard": "Choices"}
    with pytest.raises(ValueError, match="not well-formed XML"):
        read_controls(board_config().replace("</View>", "", 1))
    with pytest.raises(TypeError, match="must be a str"):
        read_controls(None)


def test_result_regions_are_valid_for_their_configs() -> None:
    board = LabelInterface(board_config(groups=2))
    ranker = ranker_region({"_": ["a"], "g1": ["b"], "g2": [], "discard": ["c"]})
    assert board.validate_prediction({"result": [ranker, group_name_region(2, "wing")]})
    assert ranker["from_name"] == "groups"
    assert ranker["to_name"] == "maps"
    per_map = LabelInterface(per_map_config())
    region = taxonomy_region("eye")
    assert region == {
        "from_name": "concept",
        "to_name": "overlay",
        "type": "taxonomy",
        "value": {"taxonomy": [["eye"]]},
    }
    assert per_map.validate_prediction({"result": [region]})
