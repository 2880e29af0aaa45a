"""The tidy namings table: its columns and statuses (``docs/formats.md``, "Namings").

``xnaming collect`` and the export reader write it, ``xnaming simulate`` writes it with the
optional :data:`SIMULATED` column, ``xnaming discover`` with the optional :data:`MADE_BY`
column, the ML backend reads what an annotator did from it, and
``xnaming analyze`` reads it: the names are defined here once.
"""

from __future__ import annotations

__all__ = [
    "DISCARDED",
    "MACHINE",
    "MADE_BY",
    "MADE_BY_VALUES",
    "NAMED",
    "NAMINGS_COLUMNS",
    "PERSON",
    "SIMULATED",
    "STATUSES",
    "UNNAMED",
    "unnamed_group_concept",
]

NAMINGS_COLUMNS = ("annotator", "category", "activation_id", "concept", "status")
"""The columns every namings table has, in this order."""
SIMULATED = "simulated"
"""Optional column: ``true`` on the rows of simulated annotators (their names start with
``sim-``), so simulated namings are never mistaken for people's. The same as
:data:`MADE_BY` = ``simulated``, which it predates (files with either read the same)."""
MADE_BY = "made_by"
"""Optional column: who made each row, one of :data:`MADE_BY_VALUES` (empty: a person)."""
PERSON = "person"
MACHINE = "machine"
"""``made_by`` of a machine namer's rows (``xnaming discover``; names start with ``auto-``)."""
MADE_BY_VALUES = (PERSON, SIMULATED, MACHINE)

NAMED = "named"
"""The annotator gave the activation a concept (``concept`` is not empty)."""
UNNAMED = "unnamed"
"""Seen and left without a concept (also: not seen at all)."""
DISCARDED = "discarded"
"""Thrown away as noise."""
STATUSES = (NAMED, UNNAMED, DISCARDED)


def unnamed_group_concept(index: int) -> str:
    """The concept of board group ``index`` (1-based) when its annotator gave it no name."""
    return f"group {index}"
