"""The concept gallery and the explanations with their images: their counts are the namings'."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from analysis import analyze
from analysis.measures.summaries import explanations
from analysis.namers.synthetic import synthetic_study
from analysis.report.explanation_images import image_maps, image_shares, share_of


@pytest.fixture(scope="module")
def study():
    activations, namings = synthetic_study(categories=3, annotators=4, activations=70, seed=5)
    rng = np.random.default_rng(5)
    activations["share"] = rng.uniform(0.1, 1.0, len(activations))
    # One annotator saw only part of one category: the rest counts as unnamed.
    unseen = (namings["annotator"] == "ann02") & (namings["category"] == "c002")
    namings = namings[~unseen | (np.arange(len(namings)) % 3 == 0)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = analyze(activations, namings)
    return activations, namings, results


def test_gallery_counts_equal_the_namings_table(study):
    activations, _namings, results = study
    gallery, cleaned = results.gallery, results.namings
    named = cleaned[cleaned["status"] == "named"]
    expected = named.groupby(["category", "annotator", "concept"]).size()
    cards = gallery[gallery["kind"] == "named"].set_index(["category", "annotator", "concept"])
    assert cards["activations"].sort_index().to_dict() == expected.sort_index().to_dict()
    discarded = cleaned[cleaned["status"] == "discarded"].groupby(["category", "annotator"]).size()
    shown = gallery[gallery["kind"] == "discarded"].set_index(["category", "annotator"])
    assert shown["activations"].sort_index().to_dict() == discarded.sort_index().to_dict()
    # Every annotator's cards add up to the category's significant activations.
    per_category = activations.groupby("category").size()
    totals = gallery.groupby(["category", "annotator"])["activations"].sum()
    for (category, _annotator), total in totals.items():
        assert total == per_category[category]
    # Images: the distinct images of the concept's maps.
    image_of = dict(zip(activations["activation_id"], activations["image_id"], strict=True))
    images = (
        named.assign(i=named["activation_id"].map(image_of))
        .groupby(["category", "annotator", "concept"])["i"]
        .nunique()
    )
    assert cards["images"].sort_index().to_dict() == images.sort_index().to_dict()


def test_gallery_examples_are_the_clearest_maps_one_per_image(study):
    activations, _namings, results = study
    share = dict(zip(activations["activation_id"], activations["share"], strict=True))
    image_of = dict(zip(activations["activation_id"], activations["image_id"], strict=True))
    members = (
        results.namings[results.namings["status"] == "named"]
        .groupby(["category", "annotator", "concept"])["activation_id"]
        .apply(list)
    )
    for card in results.gallery[results.gallery["kind"] == "named"].itertuples():
        examples = card.examples.split()
        assert 1 <= len(examples) <= 4
        assert len({image_of[e] for e in examples}) == len(examples)
        pool = members[(card.category, card.annotator, card.concept)]
        assert set(examples) <= set(pool)
        assert share[examples[0]] == max(share[a] for a in pool)
        assert card.x_features.startswith("x")


def test_explanation_examples_match_table_4(study):
    _activations, _namings, results = study
    summaries = results.summaries.set_index(["category", "annotator", "explanation"])
    by_name = {c.category: c for c in results.categories}
    for row in results.explanation_examples.itertuples():
        assert row.fraction == pytest.approx(
            summaries.loc[(row.category, row.annotator, row.explanation), "fraction"]
        )
        cat = by_name[row.category]
        a = cat.annotators.index(row.annotator)
        per_image = dict(zip(map(str, cat.image_ids), explanations(cat, a), strict=True))
        assert all(per_image[i] == row.explanation for i in row.examples.split())
    ranks = results.explanation_examples.groupby(["category", "annotator"])["rank"].max()
    assert ranks.max() <= 3


def test_an_images_maps_carry_its_names_and_shares(study):
    activations, _namings, results = study
    cat = results.categories[0]
    shares = image_shares(cat, share_of(activations))
    sums = np.bincount(cat.image_index, weights=shares)
    assert sums == pytest.approx(np.ones(len(cat.image_ids)))
    maps = image_maps(cat, 0, 0, shares)
    assert [m.share for m in maps] == sorted((m.share for m in maps), reverse=True)
    for m in maps:
        p = list(cat.activation_ids).index(m.activation_id)
        code = cat.labels[0, p]
        assert m.name == (cat.concepts[0][code] if code >= 0 else None)
    equal = image_shares(cat, share_of(activations.drop(columns="share")))
    counts = np.bincount(cat.image_index)
    assert equal == pytest.approx(1 / counts[cat.image_index])


def test_a_category_nobody_named_has_no_cards(tiny_activations, tiny_namings):
    extra = pd.DataFrame(
        [{"activation_id": "z1", "image_id": "iz", "category": "zz", "x_feature": 0}]
    )
    with pytest.warns(UserWarning, match="no namings from A, B"):
        results = analyze(pd.concat([tiny_activations, extra]), tiny_namings, min_images=1)
    assert "zz" not in set(results.gallery["category"])
    assert "zz" not in set(results.explanation_examples["category"])
