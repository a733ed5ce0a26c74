"""The offline generator of the embedded synthetic video dataset (3DPW format), used by scripts and tests.

``motion`` (procedural body motions) and ``cameras`` (perspective camera paths) make each video's
ground truth; ``masks`` renders the person's silhouette and its imperfections; ``generate`` draws the
detections (``lib.data.noise``), computes the image features (``lib.data.silhouette``) and writes the
splits; ``noise_stats`` measures a detector's noise against ground truth. The runtime data pipeline never
imports this package.
"""
