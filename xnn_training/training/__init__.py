"""Training runs: the DNN classifier, the xNN on its features, and their reports."""
