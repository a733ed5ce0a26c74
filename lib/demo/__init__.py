"""The demo pipeline on real videos: one module per stage, heavy backends imported only where used.

video (frames in, ``build_frame_source``) -> people (``lib.people``: detections and tracks) -> keypoints
(COCO-19, normalised by the frame) -> [image features: supplied by the caller] -> inference (PMCE over
padded windows, batched) -> camera (closed-form fit, smoothed) -> body fit (``lib.body.fit``, filtered
over time) -> export (npz / skinned glb / bvh / obj, atomic) and statistics (``stats``).
``pipeline.run_demo`` runs them all; errors meant for users are ``errors.DemoError``.
"""
