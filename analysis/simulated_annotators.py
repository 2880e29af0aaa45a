"""Simulated annotators: synthetic namings of a toybirds map bundle.

A simulated annotator looks at where a map's heat falls on the bird's part masks and names the
map after the part holding most of it, through a personal profile: the words they use, how
finely they split the bird (one merges eye and crown into "head", another tells an open wing from
a closed one), how concentrated a map must be before they name it, how often they discard a map
that falls on the background, and how often they slip. Everything they write is marked
simulated (a ``simulated`` column, annotator names starting with ``sim-``), so simulated
namings are never mistaken for people's.

The input is one row per activation and part with the fraction of the map's heat inside that
part's mask (:func:`xnn_training.part_masks.part_heat_table`, where the bundle's maps and the
data set's masks are); the output is the tidy namings table of docs/formats.md. They live with
the analysis because what they make is namings, the analysis' input, standing in for Label
Studio's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from label_config import DISCARDED, NAMED, NAMINGS_COLUMNS, SIMULATED, UNNAMED
from xnn_training.part_masks import BACKGROUND, PART_HEAT_COLUMNS, part_heat_table

__all__ = [
    "DEFAULT_ANNOTATORS",
    "DEFAULT_PROFILES",
    "AnnotatorProfile",
    "profiles_for",
    "simulate_bundle",
    "simulate_namings",
]


@dataclass(frozen=True)
class AnnotatorProfile:
    """How one simulated annotator names maps.

    Parameters
    ----------
    name
        The annotator's name; must start with ``sim-``.
    words
        Part -> the word this annotator uses for it (default: the part's own name).
    merge
        Part -> the coarser part it is merged into before naming (e.g. ``eye -> head``).
    split_wing
        Name open and closed wings apart ("open wing", "closed wing").
    min_focus
        Smallest share of the heat on the strongest part for the map to be named; a more
        diffuse map is left unsorted.
    discard_rate
        Chance of discarding a map whose heat falls mostly on the background (else it is
        left unsorted).
    error_rate
        Chance of naming the second strongest part instead of the strongest.
    """

    name: str
    words: Mapping[str, str] = field(default_factory=dict)
    merge: Mapping[str, str] = field(default_factory=dict)
    split_wing: bool = False
    min_focus: float = 0.35
    discard_rate: float = 0.5
    error_rate: float = 0.03

    def __post_init__(self) -> None:
        if not self.name.startswith("sim-"):
            raise ValueError(f"simulated annotator names start with 'sim-'; got {self.name!r}")
        for attribute in ("min_focus", "discard_rate", "error_rate"):
            value = getattr(self, attribute)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{self.name}: {attribute} must be in [0, 1]; got {value}")

    def concept(self, part: str, wing_open: bool) -> str:
        """The concept name this annotator gives a map on ``part``."""
        part = self.merge.get(part, part)
        if part == "wing" and self.split_wing:
            return f"{'open' if wing_open else 'closed'} {self.words.get('wing', 'wing')}"
        return self.words.get(part, part)


# Five profiles whose differences the analysis should find: two granularities of the head,
# wings split or not, different words for the same parts, different care.
DEFAULT_PROFILES: tuple[AnnotatorProfile, ...] = (
    AnnotatorProfile("sim-precise", split_wing=True, min_focus=0.35, error_rate=0.02),
    AnnotatorProfile(
        "sim-coarse",
        merge={"eye": "head", "crown": "head", "beak": "head", "throat": "head"},
        min_focus=0.30,
        error_rate=0.04,
    ),
    AnnotatorProfile(
        "sim-birder",
        words={"beak": "bill", "feet": "legs", "crown": "cap", "body": "breast"},
        split_wing=True,
        min_focus=0.40,
        error_rate=0.03,
    ),
    AnnotatorProfile(
        "sim-casual",
        merge={"eye": "head", "crown": "head", "tail": "wing"},
        words={"wing": "wing and tail"},
        min_focus=0.50,
        discard_rate=0.2,
        error_rate=0.08,
    ),
    AnnotatorProfile(
        "sim-careful",
        words={"feet": "foot", "eye": "eyes"},
        min_focus=0.45,
        discard_rate=0.8,
        error_rate=0.01,
    ),
)
DEFAULT_ANNOTATORS = len(DEFAULT_PROFILES)
"""How many simulated annotators ``xnaming simulate`` and the demo use unless told otherwise."""


def simulate_namings(
    part_heat: pd.DataFrame,
    profiles: Sequence[AnnotatorProfile] = DEFAULT_PROFILES,
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


def profiles_for(count: int) -> tuple[AnnotatorProfile, ...]:
    """``count`` distinct profiles: the defaults first, then variations of them.

    A variation keeps its model's vocabulary and granularity and draws another care level
    (``min_focus``) deterministically, so more annotators than defaults stay reproducible.
    """
    if count < 1:
        raise ValueError(f"annotators: expected at least 1, got {count}")
    profiles = list(DEFAULT_PROFILES[:count])
    for index in range(len(DEFAULT_PROFILES), count):
        model = DEFAULT_PROFILES[index % len(DEFAULT_PROFILES)]
        focus = float(np.random.default_rng(index).uniform(0.3, 0.5))
        copy = index // len(DEFAULT_PROFILES) + 1
        profiles.append(replace(model, name=f"{model.name}-{copy}", min_focus=round(focus, 3)))
    return tuple(profiles)


def simulate_bundle(
    bundle: Path, data: Path, annotators: int = DEFAULT_ANNOTATORS, seed: int = 0
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
