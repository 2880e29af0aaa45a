"""The labeling configs: generated from templates, valid for the SDK's LabelInterface."""

from __future__ import annotations

import pytest
from label_studio_sdk.label_interface import LabelInterface

from label_config import board_config, per_map_config
from ls_backend.naming import MapInfo, board_prediction


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
