"""The ML backend process: proposals per annotator, learnt from their annotations."""
