"""Malformed inputs: every error names what is wrong and where; documented rules hold."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import analyze, check_activations, check_namings, load_namings, read_namings_csv


def test_missing_namings_column_is_named(tiny_activations, tiny_namings):
    with pytest.raises(ValueError, match=r"lack the column\(s\) 'status'"):
        analyze(tiny_activations, tiny_namings.drop(columns="status"))


def test_missing_activation_column_is_named(tiny_activations, tiny_namings):
    with pytest.raises(ValueError, match="'x_feature'"):
        analyze(tiny_activations.drop(columns="x_feature"), tiny_namings)


def test_not_a_dataframe():
    with pytest.raises(TypeError, match="must be a pandas DataFrame, got list"):
        check_activations([{"activation_id": "a"}])


def test_unknown_status_names_value_and_row(tiny_namings):
    bad = tiny_namings.copy()
    bad.loc[3, "status"] = "maybe"
    with pytest.raises(ValueError, match=r"found 'maybe' in row\(s\) 5"):
        check_namings(bad)


def test_status_is_case_insensitive(tiny_activations, tiny_namings):
    upper = tiny_namings.assign(status=tiny_namings["status"].str.upper())
    assert analyze(tiny_activations, upper, min_images=1).coverage.equals(
        analyze(tiny_activations, tiny_namings, min_images=1).coverage
    )


def test_named_without_concept(tiny_namings):
    bad = tiny_namings.copy()
    bad.loc[0, "concept"] = " "
    with pytest.raises(ValueError, match=r"row\(s\) 2 are 'named' without a concept"):
        check_namings(bad)


def test_concept_of_an_unnamed_row_is_ignored(tiny_activations, tiny_namings):
    noisy = tiny_namings.copy()
    noisy.loc[noisy["status"] != "named", "concept"] = "leftover"
    assert analyze(tiny_activations, noisy, min_images=1).summaries.equals(
        analyze(tiny_activations, tiny_namings, min_images=1).summaries
    )


def test_unknown_activation_id_names_id_and_annotator(tiny_activations, tiny_namings):
    bad = tiny_namings.copy()
    bad.loc[2, "activation_id"] = "nowhere:x9"
    with pytest.raises(ValueError, match=r"not in the activations table, e\.g\. 'nowhere:x9'.*'A'"):
        analyze(tiny_activations, bad)


def test_category_mismatch(tiny_activations, tiny_namings):
    bad = tiny_namings.copy()
    bad.loc[0, "category"] = "other"
    with pytest.raises(ValueError, match="'a1' is in 'c', not 'other'"):
        analyze(tiny_activations, bad)


def test_empty_category_is_filled_from_activations(tiny_activations, tiny_namings):
    assert analyze(
        tiny_activations, tiny_namings.assign(category=""), min_images=1
    ).coverage.equals(analyze(tiny_activations, tiny_namings, min_images=1).coverage)


def test_duplicate_rows_in_one_table(tiny_namings):
    doubled = pd.concat([tiny_namings, tiny_namings.iloc[[0]]], ignore_index=True)
    with pytest.raises(ValueError, match=r"\('A', 'a1'\)"):
        check_namings(doubled)


def test_duplicate_and_bad_activations():
    base = {"image_id": "i", "category": "c", "x_feature": 0}
    with pytest.raises(ValueError, match="repeated: 'a'"):
        check_activations(pd.DataFrame([{"activation_id": "a", **base}] * 2))
    with pytest.raises(ValueError, match="x_feature must be a whole number; bad value"):
        check_activations(pd.DataFrame([{**base, "activation_id": "a", "x_feature": "one"}]))
    with pytest.raises(ValueError, match="empty image_id"):
        check_activations(pd.DataFrame([{**base, "activation_id": "a", "image_id": ""}]))


def test_bad_min_images(tiny_activations, tiny_namings):
    with pytest.raises(ValueError, match="min_images must be a non-negative integer"):
        analyze(tiny_activations, tiny_namings, min_images=-1)


def test_later_file_wins_and_says_so(tmp_path, tiny_activations, tiny_namings):
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    tiny_namings.to_csv(first, index=False)
    renamed = tiny_namings[tiny_namings["annotator"] == "A"].head(2).assign(concept="beak")
    renamed.to_csv(second, index=False)
    with pytest.warns(UserWarning, match="2 naming row"):
        merged = load_namings([first, second], check_activations(tiny_activations))
    a1 = merged[(merged["annotator"] == "A") & (merged["activation_id"] == "a1")]
    assert a1["concept"].tolist() == ["beak"]
    assert len(merged) == len(tiny_namings)


def test_csv_keeps_identifiers_as_strings(tmp_path):
    path = tmp_path / "n.csv"
    path.write_text("annotator,category,activation_id,concept,status\n007,1,01,NA,named\n")
    frame = read_namings_csv(path)
    assert frame.iloc[0].tolist() == ["007", "1", "01", "NA", "named"]


def test_json_exports_go_to_the_label_studio_reader(
    tmp_path, monkeypatch, tiny_activations, tiny_namings
):
    # Unit test of the dispatch only: the reader itself is tested with its own module.
    calls = []

    def read_label_studio_export(source):
        calls.append(source)
        return tiny_namings

    monkeypatch.setattr("analysis.inputs.read_label_studio_export", read_label_studio_export)
    export = tmp_path / "export.json"
    export.write_text("[]")
    merged = load_namings([export], check_activations(tiny_activations))
    assert calls == [export]
    assert len(merged) == len(tiny_namings)


def test_unknown_file_type(tmp_path, tiny_activations):
    with pytest.raises(ValueError, match=r"tidy \.csv or a Label Studio \.json"):
        load_namings([tmp_path / "namings.xlsx"], check_activations(tiny_activations))
