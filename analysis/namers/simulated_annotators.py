"""Simulated annotators: synthetic namings of a toybirds map bundle.

A simulated annotator looks at where a map's heat falls on the bird's part masks and names the
map after the part holding most of it, through a personal profile: the words they use, how
finely they split the bird (one merges eye and crown into "head", another tells an open wing from
a closed one), how concentrated a map must be before they name it, how often they discard a map
that falls on the background, and how often they slip. Everything they write is marked
simulated (a ``simulated`` column, annotator names starting with ``sim-``), so simulated
namings are never mistaken for people's.

Who they are is :mod:`analysis.namers.annotator_profiles`. The input is one row per activation and
part with the fraction of the map's heat inside that part's mask
(:func:`xnn_training.maps.part_masks.part_heat_table`: the parts' mask shares explain measured
into the bundle, or measured from its maps and the data set's masks for a bundle without them);
the output is the tidy namings table of docs/formats.md. They live with the
analysis because what they make is namings, the analysis' input, standing in for Label
Studio's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.namers.annotator_profiles import (
    DEFAULT_ANNOTATORS,
    DEFAULT_PROFILES,
    AnnotatorProfile,
    profiles_for,
)
from label_config import DISCARDED, NAMED, NAMINGS_COLUMNS, SIMULATED, UNNAMED
from xnn_training.maps.part_masks import BACKGROUND, PART_HEAT_COLUMNS, part_heat_table

__all__ = ["simulate_bundle", "simulate_namings"]


def simulate_namings(
    part_heat: pd.DataFrame,
    profiles: Sequence[AnnotatorProfile] = DEFAULT_PROFILES,
    *,
    seed: int = 0,
) -> pd.DataFrame:
    """Name every activation as each simulated annotator would.

    Parameters
    ----------
    part_heat
        One row per activation and part: activation_id, category, part, share (of the map's
        heat), wing_open (bool, the image's wing state).
    profiles
        The simulated annotators.
    seed
        Seed of the annotators' random choices; the same seed gives the same namings.

    Returns
    -------
    pandas.DataFrame
        The tidy namings table (annotator, category, activation_id, concept, status) plus
        ``simulated`` = True, one row per annotator and activation.
    """
    missing = sorted(set(PART_HEAT_COLUMNS) - set(part_heat.columns))
    if missing:
        raise ValueError(f"part_heat lacks the columns {missing}")
    names = [profile.name for profile in profiles]
    if len(set(names)) != len(names):
        raise ValueError(f"simulated annotator names must be distinct; got {names}")
    ranked = part_heat.sort_values(["activation_id", "share"], ascending=[True, False])
    rows = []
    for index, profile in enumerate(profiles):
        rng = np.random.default_rng([seed, index])
        for activation, parts in ranked.groupby("activation_id", sort=True):
            rows.append(_name_one(profile, activation, parts, rng))
    return pd.DataFrame(rows, columns=[*NAMINGS_COLUMNS, SIMULATED])


def _name_one(
    profile: AnnotatorProfile, activation: str, parts: pd.DataFrame, rng: np.random.Generator
) -> dict:
    category = parts["category"].iloc[0]
    row = {"annotator": profile.name, "category": category, "activation_id": activation}
    # Draw every random number up front so one choice does not shift the others.
    discard_draw, error_draw = rng.random(2)
    strongest = parts.iloc[0]
    if strongest["share"] < profile.min_focus:
        return {**row, "concept": "", "status": UNNAMED, SIMULATED: True}
    if strongest["part"] == BACKGROUND:
        status = DISCARDED if discard_draw < profile.discard_rate else UNNAMED
        return {**row, "concept": "", "status": status, SIMULATED: True}
    chosen = strongest
    bird_parts = parts[parts["part"] != BACKGROUND]
    if error_draw < profile.error_rate and len(bird_parts) > 1:
        chosen = bird_parts.iloc[1]
    concept = profile.concept(chosen["part"], bool(chosen["wing_open"]))
    return {**row, "concept": concept, "status": NAMED, SIMULATED: True}


def simulate_bundle(
    bundle: Path, data: Path, *, annotators: int = DEFAULT_ANNOTATORS, seed: int = 0
) -> pd.DataFrame:
    """Namings of a toybirds bundle by ``annotators`` simulated annotators (:func:`profiles_for`).

    Parameters
    ----------
    bundle, data
        As in :func:`part_heat_table`.
    annotators, seed
        How many simulated annotators, and the seed of their choices.

    Returns
    -------
    pandas.DataFrame
        The tidy namings table with ``simulated`` = True (see :func:`simulate_namings`).
    """
    return simulate_namings(part_heat_table(bundle, data), profiles_for(annotators), seed=seed)
