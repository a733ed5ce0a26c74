"""Evaluation: per-dataset protocols built on ``lib.metrics``."""
