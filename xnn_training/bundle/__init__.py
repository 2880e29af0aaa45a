"""The map bundle on disk: what ``xnaming explain`` writes and every later stage reads."""
