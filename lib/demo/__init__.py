"""The demo pipeline on real videos: one module per stage, heavy backends imported only where used.

video (frames in, ``build_frame_source``) -> people (detections + IoU tracks, ``build_people_backend``)
-> keypoints (COCO-19, normalised by the frame) -> [image features: supplied by the caller] -> inference
(PMCE over padded windows, batched) -> camera (closed-form weak-perspective fit, smoothed) -> export
(npz / obj / glb, atomic). ``pipeline.run_demo`` runs them all; errors meant for users are
``errors.DemoError``. The mediapipe backend needs ``mediapipe==0.10.21`` (numpy<2, protobuf<5), which is
not in requirements.txt. Nothing in ``lib`` outside this package imports it. ``smpl_fit.fit_smpl`` turns
a track's meshes into SMPL pose, shape and translation (not part of ``run_demo``).
"""
