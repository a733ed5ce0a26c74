"""The demo pipeline on real videos: one module per stage, heavy backends imported only where used.

video (frames in) -> people (detections + tracks) -> keypoints (COCO-19, normalised) -> inference (PMCE
over padded windows) -> camera (closed-form weak-perspective fit) -> export (npz / obj / glb, atomic).
Nothing in ``lib`` outside this package imports it.
"""
