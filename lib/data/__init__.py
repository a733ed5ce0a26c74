"""Datasets, windows, sampling and input-noise synthesis (numpy; the model never imports this)."""
