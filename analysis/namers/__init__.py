"""Namings not made by people: simulated annotators, machine namings, synthetic studies."""
