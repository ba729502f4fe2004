"""Datasets, training and evaluation of frame classifiers (breakup or any
two-class frame filter). Nothing here is imported on the live path."""
