"""Simulated annotators: synthetic namings of a toybirds map bundle.

A simulated annotator looks at where a map's heat falls on the bird's part masks and names the
map after the part holding most of it, through a personal profile: the words they use, how
finely they split the bird (one merges eye and crown into "head", another tells an open wing from
a closed one), how concentrated a map must be before they name it, how often they discard a map
that falls on the background, and how often they slip. Everything they write is marked
simulated (a ``simulated`` column, annotator names starting with ``sim-``), so simulated
namings are never mistaken for people's.

The input is one row per activation and part with the fraction of the map's heat inside that
part's mask (:func:`heat_by_part`); the output is the tidy namings table of docs/formats.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from label_config import DISCARDED, NAMED, NAMINGS_COLUMNS, SIMULATED, UNNAMED

__all__ = [
    "BACKGROUND",
    "DEFAULT_PROFILES",
    "AnnotatorProfile",
    "heat_by_part",
    "part_heat_table",
    "profiles_for",
    "simulate_bundle",
    "simulate_namings",
]

BACKGROUND = "background"
HOT = 0.7
"""Pixels at least this fraction of a map's maximum form its visible hot spot. An annotator
names what lights up in the overlay; the faint tail of an upsampled map would otherwise put
most of the heat on the (large) background of every image."""


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


def heat_by_part(
    heat: np.ndarray, part_mask: np.ndarray, part_names: Mapping[int, str], hot: float = HOT
) -> dict:
    """Share of a map's visible heat inside each part's mask.

    Parameters
    ----------
    heat
        The map (H x W, non-negative).
    part_mask
        Integer label image of the same size; labels missing from ``part_names`` count as
        background.
    part_names
        Label -> part name.
    hot
        Only pixels at least ``hot`` times the map's maximum count (0: all of the heat).

    Returns
    -------
    dict
        Part name (and ``"background"``) -> share of the heat, summing to 1; all zeros for an
        all-zero map.
    """
    heat = np.asarray(heat, dtype=np.float64)
    if heat.shape != part_mask.shape:
        raise ValueError(f"map shape {heat.shape} differs from part mask shape {part_mask.shape}")
    if np.any(heat < 0) or not np.all(np.isfinite(heat)):
        raise ValueError("a map must be finite and non-negative")
    if not 0.0 <= hot < 1.0:
        raise ValueError(f"hot must be in [0, 1); got {hot}")
    heat = np.where(heat >= hot * heat.max(), heat, 0.0) if heat.size else heat
    total = heat.sum()
    shares = {name: 0.0 for name in (*part_names.values(), BACKGROUND)}
    if total == 0:
        return shares
    sums = np.bincount(part_mask.ravel(), weights=heat.ravel())
    for label, value in enumerate(sums):
        shares[part_names.get(label, BACKGROUND)] += value / total
    return shares


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
    required = {"activation_id", "category", "part", "share", "wing_open"}
    missing = sorted(required - set(part_heat.columns))
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


def part_heat_table(bundle: Path, data: Path) -> pd.DataFrame:
    """Where each map of a toybirds bundle shows its heat: one row per activation and part.

    Parameters
    ----------
    bundle
        A map bundle (``xnaming explain``) of toybirds images.
    data
        The toybirds data set the bundle was made from (its part masks and wing states).

    Returns
    -------
    pandas.DataFrame
        activation_id, category, part, share (of the map's visible heat, see :data:`HOT`),
        wing_open.
    """
    from xnn_training.bundle import read_bundle

    meta_path = Path(data) / "toybirds.json"
    if not meta_path.is_file():
        raise ValueError(
            f"data: {data} is not a toybirds data set ({meta_path.name} is missing); simulated "
            "annotators need toybirds' part masks"
        )
    part_names = {
        int(label): name for label, name in json.loads(meta_path.read_text())["parts"].items()
    }
    part_names = {label: name for label, name in part_names.items() if name != BACKGROUND}
    images = pd.read_csv(Path(data) / "images.csv", dtype={"image_id": str}).set_index("image_id")
    activations = read_bundle(bundle).activations
    unknown = sorted(set(activations["image_id"]) - set(images.index))
    if unknown:
        raise ValueError(f"bundle {bundle} has images not in data set {data}: {unknown[:5]}")
    rows = []
    for row in tqdm(activations.itertuples(), total=len(activations), desc="maps", unit="map"):
        image = images.loc[row.image_id]
        mask = np.asarray(Image.open(Path(data) / image["mask_path"]))
        heat = np.load(Path(bundle) / row.map_path)["map"]
        if heat.shape != mask.shape:  # maps are at the model's input size
            heat = np.asarray(
                Image.fromarray(heat.astype(np.float32), mode="F").resize(
                    mask.shape[::-1], Image.Resampling.BILINEAR
                )
            ).clip(min=0)
        for part, share in heat_by_part(heat, mask, part_names).items():
            rows.append(
                {
                    "activation_id": row.activation_id,
                    "category": row.category,
                    "part": part,
                    "share": share,
                    "wing_open": image["wing"] == "open",
                }
            )
    return pd.DataFrame(rows, columns=["activation_id", "category", "part", "share", "wing_open"])


def simulate_bundle(bundle: Path, data: Path, annotators: int = 5, seed: int = 0) -> pd.DataFrame:
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
