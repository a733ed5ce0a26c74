"""One reader per dataset: official preprocessed files -> FrameTable (lib/data/frames.py)."""
