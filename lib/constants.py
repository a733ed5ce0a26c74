"""Joint sets and mesh sizes shared by every part of the project (no torch here)."""

from __future__ import annotations

NUM_VERTICES = 6890  # SMPL mesh
NUM_COARSE_VERTICES = 431  # after two GraphCMR downsamplings (6890 -> 1723 -> 431)

COCO17_JOINTS = (
    "Nose", "L_Eye", "R_Eye", "L_Ear", "R_Ear", "L_Shoulder", "R_Shoulder", "L_Elbow", "R_Elbow",
    "L_Wrist", "R_Wrist", "L_Hip", "R_Hip", "L_Knee", "R_Knee", "L_Ankle", "R_Ankle",
)  # fmt: skip
# COCO-17 + Pelvis (mean of the hips) + Neck (mean of the shoulders): the official input set 'coco'.
COCO19_JOINTS = (*COCO17_JOINTS, "Pelvis", "Neck")

H36M17_JOINTS = (
    "Pelvis", "R_Hip", "R_Knee", "R_Ankle", "L_Hip", "L_Knee", "L_Ankle", "Torso", "Neck", "Nose",
    "Head", "L_Shoulder", "L_Elbow", "L_Wrist", "R_Shoulder", "R_Elbow", "R_Wrist",
)  # fmt: skip
# The 14 Human3.6M-17 joints every benchmark reports (drops Pelvis, Torso and Nose).
H36M_EVAL_JOINTS = (1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 13, 14, 15, 16)

SMPL24_JOINTS = (
    "Pelvis", "L_Hip", "R_Hip", "Spine1", "L_Knee", "R_Knee", "Spine2", "L_Ankle", "R_Ankle", "Spine3",
    "L_Foot", "R_Foot", "Neck", "L_Collar", "R_Collar", "Head", "L_Shoulder", "R_Shoulder", "L_Elbow",
    "R_Elbow", "L_Wrist", "R_Wrist", "L_Hand", "R_Hand",
)  # fmt: skip

JOINT_SETS: dict[str, tuple[str, ...]] = {
    "coco17": COCO17_JOINTS,
    "coco19": COCO19_JOINTS,
    "h36m17": H36M17_JOINTS,
    "smpl24": SMPL24_JOINTS,
}


def flip_permutation(joint_set: str) -> tuple[int, ...]:
    """For each joint, the index of its mirror image (L_* <-> R_*; midline joints map to themselves)."""
    perm = list(range(num_joints(joint_set)))
    for left, right in flip_pairs(joint_set):
        perm[left], perm[right] = right, left
    return tuple(perm)


def joint_mapping(src: str, dst: str) -> tuple[int, ...]:
    """For each joint of ``dst``, its index in ``src`` by name, or -1 where ``src`` lacks it.

    Same name means the same anatomical joint (as in VIBE's ``convert_kps``); where sets define a joint
    slightly differently (SMPL's Pelvis vs Human3.6M's), the conversion is approximate.
    """
    num_joints(src), num_joints(dst)  # validates both names
    src_names = JOINT_SETS[src]
    return tuple(src_names.index(n) if n in src_names else -1 for n in JOINT_SETS[dst])


H36M_ROOT = H36M17_JOINTS.index("Pelvis")  # root of the root-relative targets and metrics


def num_joints(joint_set: str) -> int:
    """Number of joints of a named joint set ('coco17', 'coco19', 'h36m17', 'smpl24')."""
    try:
        return len(JOINT_SETS[joint_set])
    except KeyError:
        raise ValueError(f"unknown joint set {joint_set!r}; known: {sorted(JOINT_SETS)}") from None


def flip_pairs(joint_set: str) -> tuple[tuple[int, int], ...]:
    """(left, right) index pairs of a joint set, matched by name ('L_Hip' <-> 'R_Hip'), in left order."""
    if joint_set not in JOINT_SETS:
        raise ValueError(f"unknown joint set {joint_set!r}; known: {sorted(JOINT_SETS)}")
    names = JOINT_SETS[joint_set]
    return tuple((i, names.index("R_" + n[2:])) for i, n in enumerate(names) if n.startswith("L_"))
