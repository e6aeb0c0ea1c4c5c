"""Evaluation shared by the families: likelihood bounds, 2-D mode coverage,
sliced Wasserstein distance."""
