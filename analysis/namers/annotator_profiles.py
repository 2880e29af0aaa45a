"""Who the simulated annotators are: five profiles of how people name maps, and more on demand.

:mod:`analysis.namers.simulated_annotators` names a bundle's maps through them. Kept apart and light
(no numpy or pandas at import), so ``xnaming simulate --help`` reads :data:`DEFAULT_ANNOTATORS`
without loading them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

__all__ = ["DEFAULT_ANNOTATORS", "DEFAULT_PROFILES", "AnnotatorProfile", "profiles_for"]


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


def profiles_for(count: int) -> tuple[AnnotatorProfile, ...]:
    """``count`` distinct profiles: the defaults first, then variations of them.

    A variation keeps its model's vocabulary and granularity and draws another care level
    (``min_focus``) deterministically, so more annotators than defaults stay reproducible.
    """
    import numpy as np  # here, so the profiles (read by `xnaming --help`) stay light

    if count < 1:
        raise ValueError(f"annotators: expected at least 1, got {count}")
    profiles = list(DEFAULT_PROFILES[:count])
    for index in range(len(DEFAULT_PROFILES), count):
        model = DEFAULT_PROFILES[index % len(DEFAULT_PROFILES)]
        focus = float(np.random.default_rng(index).uniform(0.3, 0.5))
        copy = index // len(DEFAULT_PROFILES) + 1
        profiles.append(replace(model, name=f"{model.name}-{copy}", min_focus=round(focus, 3)))
    return tuple(profiles)
