"""Procedural human motion as SMPL pose parameters, for the synthetic video dataset.

A motion is a sum of parametric *actions* (idle sway, walk, turn, arm raise, wave, squat, sit down, jump;
optionally acrobatic and athletic ones), each multiplied by a smooth envelope (smoothstep ramps in and
out), so every joint angle is a smooth function of time. Body-joint angles are Euler angles in SMPL's rest
frame (x left, y up, z forward; the rotation of joint ``j`` is ``Rx(a) @ Ry(b) @ Rz(c)``), clipped to
per-joint ranges (:data:`JOINT_LIMITS_DEG`) and converted to SMPL's 72 axis-angle values. The root follows
a trajectory on the ground plane (y up) driven by the actions' forward speed and turning rate; its height
follows the legs (pelvis drop from hip and knee flexion; not while running) plus the jump lift. Everything
is a pure function of a ``numpy.random.Generator``.

Left-side angles are given; the right side is the mirror image: same x, negated y and z.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

NUM_SMPL_JOINTS = 24
THIGH, SHANK = 0.39, 0.40  # metres, used for the pelvis height implied by hip / knee flexion
ACTIONS = ("idle", "walk", "turn", "arm_raise", "wave", "squat", "sit", "jump")
# Whole-body actions off the upright repertoire (``acrobatics`` > 0): the body pitched or rolled through
# a full turn in the air, on the floor on hands and knees or lying, and fast single-limb strikes.
ACROBATICS = ("flip", "cartwheel", "crawl", "lie", "kick", "punch")
# Sports and floor transitions (``athletics`` > 0): running, fast spins on one foot (half of them with a
# leg raised: spin kicks), kicks to the side, getting up from the back or the front, dancing (stepping
# with wide, raised arm gestures).
ATHLETICS = ("run", "spin", "side_kick", "get_up", "dance")
# Joints that the free-limb layer (``free_limbs`` > 0) moves, with the share of their range it may reach:
# arms fully, the trunk, head and legs less (the pelvis height follows the legs, feet stay plausible).
_FREE_JOINTS = {
    "L_Shoulder": 1.0, "R_Shoulder": 1.0, "L_Elbow": 1.0, "R_Elbow": 1.0, "L_Wrist": 0.5, "R_Wrist": 0.5,
    "L_Collar": 0.5, "R_Collar": 0.5, "Spine1": 0.5, "Spine2": 0.4, "Spine3": 0.4, "Neck": 0.5, "Head": 0.5,
    "L_Hip": 0.45, "R_Hip": 0.45, "L_Knee": 0.5, "R_Knee": 0.5,
}  # fmt: skip
_EULER = "XYZ"  # scipy intrinsic XYZ: R = Rx(a) @ Ry(b) @ Rz(c)

# Per-joint Euler ranges in degrees, ((lo_x, lo_y, lo_z), (hi_x, hi_y, hi_z)), for SMPL joints 1..23.
# x flexes (hips forward < 0, knees bend > 0, spine / neck forward > 0); for the left arm, z < 0 lowers it
# from the T-pose, y < 0 bends the elbow forward. Right-side ranges are the mirror images.
_LEFT_LIMITS = {
    "Hip": ((-120, -35, -20), (35, 35, 50)),
    "Knee": ((0, -5, -5), (145, 5, 5)),
    "Ankle": ((-35, -15, -20), (45, 15, 20)),
    "Foot": ((-15, -10, -10), (15, 10, 10)),
    "Collar": ((-15, -20, -25), (15, 20, 25)),
    "Shoulder": ((-160, -85, -90), (70, 45, 95)),
    "Elbow": ((-25, -150, -5), (25, 0, 5)),
    "Wrist": ((-45, -35, -60), (45, 35, 60)),
    "Hand": ((-15, -10, -10), (15, 10, 10)),
}
_CENTRE_LIMITS = {
    "Spine1": ((-25, -30, -20), (40, 30, 20)),
    "Spine2": ((-20, -25, -15), (35, 25, 15)),
    "Spine3": ((-20, -25, -15), (35, 25, 15)),
    "Neck": ((-30, -45, -25), (40, 45, 25)),
    "Head": ((-30, -40, -20), (35, 40, 20)),
}
_SMPL_NAMES = (
    "Pelvis", "L_Hip", "R_Hip", "Spine1", "L_Knee", "R_Knee", "Spine2", "L_Ankle", "R_Ankle", "Spine3",
    "L_Foot", "R_Foot", "Neck", "L_Collar", "R_Collar", "Head", "L_Shoulder", "R_Shoulder", "L_Elbow",
    "R_Elbow", "L_Wrist", "R_Wrist", "L_Hand", "R_Hand",
)  # fmt: skip
_MIRROR = np.array([1.0, -1.0, -1.0])


def _limits_table() -> np.ndarray:
    table = np.zeros((NUM_SMPL_JOINTS, 2, 3))
    for j, name in enumerate(_SMPL_NAMES[1:], start=1):
        if name in _CENTRE_LIMITS:
            table[j] = _CENTRE_LIMITS[name]
            continue
        lo, hi = (np.array(v, dtype=float) for v in _LEFT_LIMITS[name[2:]])
        if name.startswith("R_"):  # mirror: x unchanged, y and z negated (and their bounds swapped)
            lo, hi = np.where(_MIRROR > 0, lo, -hi), np.where(_MIRROR > 0, hi, -lo)
        table[j] = lo, hi
    return table


JOINT_LIMITS_DEG = _limits_table()  # (24, 2, 3) [joint, lo/hi, xyz]; row 0 (global orientation) unused


@dataclass(frozen=True)
class Motion:
    """One person's motion in the world frame (y up), T frames."""

    pose: np.ndarray  # (T, 72) SMPL axis-angle, global orientation first
    trans: np.ndarray  # (T, 3) SMPL translation, metres
    euler: np.ndarray  # (T, 24, 3) body-joint Euler angles (radians) after clipping; row 0 zeros
    actions: tuple[tuple[str, float, float], ...]  # (name, start s, end s) of every action used
    fps: float


def euler_to_axis_angle(euler: np.ndarray) -> np.ndarray:
    """(..., 3) Euler angles (radians, R = Rx Ry Rz) -> (..., 3) axis-angle."""
    flat = euler.reshape(-1, 3)
    return Rotation.from_euler(_EULER, flat).as_rotvec().reshape(euler.shape)


def axis_angle_to_euler(rotvec: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle -> (..., 3) Euler angles (radians, R = Rx Ry Rz, |y| <= pi / 2)."""
    flat = rotvec.reshape(-1, 3)
    return Rotation.from_rotvec(flat).as_euler(_EULER).reshape(rotvec.shape)


def smoothstep(x: np.ndarray) -> np.ndarray:
    """C1 ramp from 0 (x <= 0) to 1 (x >= 1)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def envelope(t: np.ndarray, start: float, end: float, ramp: float) -> np.ndarray:
    """(T,) smooth weight: 0 before ``start``, ramps to 1 over ``ramp`` s, back to 0 at ``end``."""
    ramp = max(min(ramp, (end - start) / 2), 1e-3)
    return smoothstep((t - start) / ramp) * smoothstep((end - t) / ramp)


class _Track:
    """Accumulates per-frame channels: joint angles (degrees) and root channels."""

    def __init__(self, t: np.ndarray):
        self.t = t
        n = len(t)
        self.angles = np.zeros((n, NUM_SMPL_JOINTS, 3))  # degrees
        self.speed = np.zeros(n)  # forward speed, m/s
        self.yaw_rate = np.zeros(n)  # rad/s
        self.lift = np.zeros(n)  # metres of root lift (jump flight; negative: nearer the floor)
        self.lean = np.zeros(n)  # degrees of whole-body forward pitch
        self.roll = np.zeros(n)  # degrees of whole-body roll about the forward axis
        self.feet_planted = np.ones(n)  # share of the pelvis height and shift over the feet that the legs set

    def add(self, name: str, values: np.ndarray, weight: np.ndarray, mirror: bool = False) -> None:
        """Add (T, 3) degrees to joint ``name`` (and its mirror image on ``R_...`` when ``mirror``)."""
        values = np.broadcast_to(values, (len(self.t), 3)) * weight[:, None]
        self.angles[:, _SMPL_NAMES.index(name)] += values
        if mirror:
            self.angles[:, _SMPL_NAMES.index("R_" + name[2:])] += values * _MIRROR

    def add_side(self, side: str, name: str, values: np.ndarray, weight: np.ndarray) -> None:
        """Add left-convention degrees to joint ``name`` of ``side`` ('L' or 'R'), mirrored for 'R'."""
        values = np.broadcast_to(values, (len(self.t), 3))
        self.add(f"{side}_{name}", values * (_MIRROR if side == "R" else 1.0), weight)


def _xyz(x=0.0, y=0.0, z=0.0) -> np.ndarray:
    """(T, 3) or (3,) channels from scalars / (T,) arrays."""
    return np.stack(np.broadcast_arrays(x, y, z), axis=-1).astype(float)


def _idle(track: _Track, rng: np.random.Generator) -> None:
    """Relaxed standing: arms down, slight knee / elbow flexion, slow sway and head movements."""
    t, one = track.t, np.ones(len(track.t))
    lower = rng.uniform(62, 78)
    track.add("L_Shoulder", _xyz(rng.uniform(-10, 5), 0, -lower), one, mirror=True)
    track.add("L_Elbow", _xyz(0, -rng.uniform(5, 25), 0), one, mirror=True)
    track.add("L_Knee", _xyz(rng.uniform(2, 8)), one, mirror=True)
    track.add("L_Hip", _xyz(-rng.uniform(0, 6), 0, rng.uniform(0, 6)), one, mirror=True)
    for name, amp in (("Spine1", 2.0), ("Neck", 6.0), ("Head", 8.0)):
        f, ph = rng.uniform(0.1, 0.35, 3), rng.uniform(0, 2 * np.pi, 3)
        track.add(name, amp * np.sin(2 * np.pi * f * t[:, None] + ph), one)


def _walk(track: _Track, rng: np.random.Generator, w: np.ndarray) -> None:
    t = track.t
    amp, freq = rng.uniform(0.6, 1.1), rng.uniform(0.8, 1.05)
    phase = 2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi)
    for side, sign in (("L", 1.0), ("R", -1.0)):
        s = np.sin(phase) * sign
        track.add_side(side, "Hip", _xyz(-5 - 25 * amp * s), w)
        track.add_side(side, "Knee", _xyz(8 + 30 * amp * 0.5 * (1 + np.sin(phase * 1 + sign * 1.2 + 0.3))), w)
        track.add_side(side, "Ankle", _xyz(8 * amp * np.sin(phase + sign * 0.8)), w)
        track.add_side(side, "Shoulder", _xyz(22 * amp * s), w)
        track.add_side(side, "Elbow", _xyz(0, -12 * amp * (1 + 0.5 * s)), w)
    track.add("Spine2", _xyz(3, 6 * amp * np.sin(phase)), w)
    track.speed += w * 1.25 * amp * freq
    track.lean += w * 3 * amp


def _turn(track: _Track, rng: np.random.Generator, w: np.ndarray) -> None:
    rate = np.deg2rad(rng.uniform(40, 110)) * rng.choice([-1.0, 1.0])
    track.yaw_rate += w * rate
    track.add("Neck", _xyz(0, np.rad2deg(rate) * 0.15), w)


def _arm_raise(track: _Track, rng: np.random.Generator, w: np.ndarray) -> None:
    sides = [("L",), ("R",), ("L", "R")][rng.integers(3)]
    lateral = rng.random() < 0.5
    height = rng.uniform(60, 150)
    for side in sides:
        if lateral:
            track.add_side(side, "Shoulder", _xyz(0, 0, height), w)
        else:
            track.add_side(side, "Shoulder", _xyz(-min(height, 140), 0, 20), w)
        track.add_side(side, "Elbow", _xyz(0, -rng.uniform(0, 40)), w)


def _wave(track: _Track, rng: np.random.Generator, w: np.ndarray) -> None:
    side = "L" if rng.random() < 0.5 else "R"
    freq, phase = rng.uniform(1.2, 2.2), rng.uniform(0, 2 * np.pi)
    osc = np.sin(2 * np.pi * freq * track.t + phase)
    track.add_side(side, "Shoulder", _xyz(-20, 0, rng.uniform(95, 135) + 8 * osc), w)
    track.add_side(side, "Elbow", _xyz(0, -rng.uniform(50, 80) - 20 * osc), w)
    track.add_side(side, "Wrist", _xyz(0, 0, 20 * osc), w)


def _squat(track: _Track, rng: np.random.Generator, w: np.ndarray, depth: float | None = None) -> None:
    d = rng.uniform(0.4, 1.0) if depth is None else depth
    track.add("L_Hip", _xyz(-95 * d, 0, 8 * d), w, mirror=True)
    track.add("L_Knee", _xyz(115 * d), w, mirror=True)
    track.add("L_Ankle", _xyz(25 * d), w, mirror=True)
    track.add("Spine1", _xyz(25 * d), w)
    track.add("L_Shoulder", _xyz(-70 * d), w, mirror=True)


def _sit(track: _Track, rng: np.random.Generator, w: np.ndarray) -> None:
    track.add("L_Hip", _xyz(-rng.uniform(80, 95), 0, rng.uniform(0, 12)), w, mirror=True)
    track.add("L_Knee", _xyz(rng.uniform(80, 100)), w, mirror=True)
    track.add("L_Shoulder", _xyz(-rng.uniform(10, 35)), w, mirror=True)
    track.add("L_Elbow", _xyz(0, -rng.uniform(20, 60)), w, mirror=True)
    lean = w * (1 - w) * 4 * rng.uniform(15, 30)  # lean forward while getting up / sitting down
    track.add("Spine1", _xyz(lean), np.ones(len(w)))


def _jump(track: _Track, rng: np.random.Generator, start: float, end: float) -> None:
    """Crouch, flight (smooth lift), landing crouch; arms swing up during the flight."""
    t, mid = track.t, (start + end) / 2
    flight = rng.uniform(0.35, 0.55)
    height = rng.uniform(0.1, 0.35)
    crouch = envelope(t, start, mid - flight / 2 + 0.1, 0.3) + envelope(t, mid + flight / 2 - 0.1, end, 0.3)
    _squat(track, rng, np.clip(crouch, 0, 1), depth=rng.uniform(0.3, 0.5))
    s = np.clip((t - (mid - flight / 2)) / flight, 0, 1)
    up = np.sin(np.pi * s) ** 2
    track.lift += height * up
    track.add("L_Shoulder", _xyz(-60, 0, 30), up, mirror=True)
    track.add("L_Ankle", _xyz(-20), up, mirror=True)


def _flip(track: _Track, rng: np.random.Generator, start: float, end: float) -> None:
    """A somersault: tucked legs, the body pitched through a full turn (forwards or backwards) in the air."""
    s = np.clip((track.t - start) / max(end - start, 1e-3), 0, 1)
    turn = smoothstep(s) * 360.0 * rng.choice([-1.0, 1.0])
    track.lean += turn
    track.lift += rng.uniform(0.3, 0.8) * np.sin(np.pi * s)
    tuck = np.sin(np.pi * s) ** 2
    track.add("L_Hip", _xyz(-rng.uniform(70, 110)), tuck, mirror=True)
    track.add("L_Knee", _xyz(rng.uniform(90, 130)), tuck, mirror=True)
    track.add("L_Shoulder", _xyz(-rng.uniform(60, 140), 0, 20), tuck, mirror=True)


def _cartwheel(track: _Track, rng: np.random.Generator, start: float, end: float) -> None:
    """Arms overhead, legs apart, the body rolled through a full turn about its forward axis."""
    s = np.clip((track.t - start) / max(end - start, 1e-3), 0, 1)
    track.roll += smoothstep(s) * 360.0 * rng.choice([-1.0, 1.0])
    track.lift += 0.25 * np.sin(np.pi * s)
    spread = envelope(track.t, start, end, 0.25 * (end - start))
    track.add("L_Hip", _xyz(0, 0, rng.uniform(30, 50)), spread, mirror=True)
    track.add("L_Shoulder", _xyz(0, 0, rng.uniform(120, 160)), spread, mirror=True)
    track.speed += 1.2 * np.sin(np.pi * s)


def _crawl(track: _Track, rng: np.random.Generator, w: np.ndarray) -> None:
    """On hands and knees: the trunk horizontal, thighs and arms vertical, limbs alternating slowly."""
    phase = 2 * np.pi * rng.uniform(0.5, 0.9) * track.t + rng.uniform(0, 2 * np.pi)
    track.lean += w * rng.uniform(75, 90)
    track.lift -= w * rng.uniform(0.35, 0.5)
    for side, sign in (("L", 1.0), ("R", -1.0)):
        step = 15 * np.sin(phase) * sign
        track.add_side(side, "Hip", _xyz(-90 - step), w)
        track.add_side(side, "Knee", _xyz(90 + step), w)
        track.add_side(side, "Shoulder", _xyz(-80 + step, 0, 0), w)
    track.add("Neck", _xyz(-30), w)
    track.speed += w * 0.3


def _lie(track: _Track, rng: np.random.Generator, w: np.ndarray) -> None:
    """Lying on the back or front (getting down and up along the envelope), limbs loosely bent."""
    track.lean += w * rng.choice([-90.0, 90.0]) * rng.uniform(0.85, 1.0)
    track.lift -= w * rng.uniform(0.7, 0.85)
    track.add("L_Hip", _xyz(-rng.uniform(0, 40), 0, rng.uniform(0, 20)), w, mirror=True)
    track.add("L_Knee", _xyz(rng.uniform(0, 70)), w, mirror=True)
    track.add("L_Shoulder", _xyz(-rng.uniform(0, 60), 0, -rng.uniform(0, 60)), w, mirror=True)


def _kick(track: _Track, rng: np.random.Generator, start: float, end: float) -> None:
    """One leg swung up with the knee extending, a quick strike, arms out for balance."""
    side = "L" if rng.random() < 0.5 else "R"
    strike = np.sin(np.pi * np.clip((track.t - start) / max(end - start, 1e-3), 0, 1)) ** 2
    w = envelope(track.t, start, end, 0.25 * (end - start))
    track.add_side(side, "Hip", _xyz(-rng.uniform(60, 110), 0, rng.uniform(0, 30)), strike)
    track.add_side(side, "Knee", _xyz(rng.uniform(0, 40)), strike)
    track.add("Spine1", _xyz(-15), strike)
    track.add("L_Shoulder", _xyz(-30, 0, -40), w, mirror=True)


def _punch(track: _Track, rng: np.random.Generator, w: np.ndarray) -> None:
    """Guard up, one arm thrust forward and back."""
    side = "L" if rng.random() < 0.5 else "R"
    freq = rng.uniform(1.0, 2.0)
    thrust = 0.5 * (1 - np.cos(2 * np.pi * freq * track.t)) * w
    track.add("L_Shoulder", _xyz(-60, 0, -50), w, mirror=True)
    track.add("L_Elbow", _xyz(0, -110), w, mirror=True)
    track.add_side(side, "Shoulder", _xyz(-30, 0, 50), thrust)
    track.add_side(side, "Elbow", _xyz(0, 110), thrust)
    track.add("Spine2", _xyz(0, 25 * (1 if side == "L" else -1)), thrust)


def _free(track: _Track, rng: np.random.Generator, w: np.ndarray) -> None:
    """Every limb and the trunk wandering smoothly through its range (two random sines per angle): poses
    and limb combinations that no scripted action makes, as in dancing, sports or getting up."""
    t = track.t[:, None]
    for name, reach in _FREE_JOINTS.items():
        lo, hi = JOINT_LIMITS_DEG[_SMPL_NAMES.index(name)]
        centre, half = (lo + hi) / 2, (hi - lo) / 2 * reach
        freq, phase = rng.uniform(0.15, 0.8, (2, 3)), rng.uniform(0, 2 * np.pi, (2, 3))
        amp = rng.uniform(0.15, 0.5, (2, 3))  # sums within the range: few kinks at the limits
        wander = (amp[:, None] * np.sin(2 * np.pi * freq[:, None] * t + phase[:, None])).sum(axis=0)
        track.add(name, centre * reach + half * wander, w)


def _run(track: _Track, rng: np.random.Generator, w: np.ndarray) -> None:
    """Running: wide leg swings with the swing knee folded high, elbows bent ~90 degrees and pumping against
    the legs, the trunk leaning forward, a bounce twice per stride, 2-3.2 m/s."""
    amp, freq = rng.uniform(0.7, 1.0), rng.uniform(1.3, 1.6)  # strides (two steps) per second
    phase = 2 * np.pi * freq * track.t + rng.uniform(0, 2 * np.pi)
    for side, shift in (("L", 0.0), ("R", np.pi)):
        leg = phase + shift
        swing = (0.5 * (1 + np.cos(leg))) ** 2  # knee folds while the thigh travels forward
        track.add_side(side, "Hip", _xyz(-20 - 35 * amp * np.sin(leg)), w)
        track.add_side(side, "Knee", _xyz(20 + 80 * amp * swing), w)
        track.add_side(side, "Ankle", _xyz(12 * np.sin(leg + 0.5)), w)
        track.add_side(side, "Shoulder", _xyz(40 * amp * np.sin(leg), 0, 10), w)
        track.add_side(side, "Elbow", _xyz(0, -80 - 20 * np.sin(leg)), w)
    track.add("Spine2", _xyz(0, 8 * amp * np.sin(phase)), w)
    track.lean += w * rng.uniform(5, 12)
    track.speed += w * rng.uniform(2.0, 3.2)
    track.lift += w * (0.03 * np.cos(2 * phase) - 0.06)
    track.feet_planted -= w  # the pelvis travels smoothly over the flight phases, not from foot to foot


def _tilt_away(track: _Track, side: str, degrees: np.ndarray) -> None:
    """Roll the whole body ``degrees`` (T,) away from the raised leg of ``side`` ('L' or 'R')."""
    track.roll += degrees * (1.0 if side == "L" else -1.0)


def _spin(track: _Track, rng: np.random.Generator, start: float, end: float) -> None:
    """A fast turn on the spot through 180-450 degrees, arms out or pulled in; half of the spins raise one
    leg forward and out at their middle (a spin kick) with the trunk tilting away from it."""
    duration = max(end - start, 1e-3)
    s = np.clip((track.t - start) / duration, 0, 1)
    turn = np.deg2rad(rng.uniform(180, 450)) * rng.choice([-1.0, 1.0])
    track.yaw_rate += turn * 6 * s * (1 - s) / duration  # smoothstep's derivative: smooth start and stop
    body = np.sin(np.pi * s) ** 2
    track.add("L_Shoulder", _xyz(-rng.uniform(0, 40), 0, rng.uniform(30, 90)), body, mirror=True)
    track.add("L_Elbow", _xyz(0, -rng.uniform(10, 100)), body, mirror=True)
    if rng.random() < 0.5:
        side = "L" if rng.random() < 0.5 else "R"
        track.add_side(side, "Hip", _xyz(-rng.uniform(30, 70), 0, rng.uniform(20, 50)), body)
        track.add_side(side, "Knee", _xyz(rng.uniform(0, 50)), body)
        _tilt_away(track, side, body * rng.uniform(10, 25))


def _side_kick(track: _Track, rng: np.random.Generator, start: float, end: float) -> None:
    """One leg chambered and driven out sideways, the trunk tilting away from it, arms out for balance."""
    side = "L" if rng.random() < 0.5 else "R"
    s = np.clip((track.t - start) / max(end - start, 1e-3), 0, 1)
    strike, w = np.sin(np.pi * s) ** 2, envelope(track.t, start, end, 0.25 * (end - start))
    track.add_side(side, "Hip", _xyz(-rng.uniform(0, 50), 0, 50), strike)
    track.add_side(side, "Knee", _xyz(rng.uniform(40, 90)), np.clip(w - strike, 0, 1))  # chamber, extend
    _tilt_away(track, side, strike * rng.uniform(20, 45))
    track.add("L_Shoulder", _xyz(0, 0, rng.uniform(30, 70)), w, mirror=True)


def _get_up(track: _Track, rng: np.random.Generator, start: float, end: float) -> None:
    """Getting down to the floor and up again: lying on the back (then sitting up, feet drawn in) or on
    the front (then pushing up to hands and knees), through a crouch to standing."""
    s = np.clip((track.t - start) / max(end - start, 1e-3), 0, 1)
    lying = smoothstep(s / 0.15) * (1 - smoothstep((s - 0.3) / 0.3))
    standing = smoothstep((s - 0.55) / 0.4)
    crouch = smoothstep(s / 0.15) * (1 - lying) * (1 - standing)
    face_up = rng.random() < 0.5
    track.lean += lying * (-90.0 if face_up else 90.0) + crouch * (rng.uniform(10, 30) if face_up else 60.0)
    track.lift -= lying * rng.uniform(0.7, 0.8) + crouch * (0.15 if face_up else 0.3)
    track.add("L_Hip", _xyz(-rng.uniform(90, 115), 0, rng.uniform(0, 20)), crouch, mirror=True)
    track.add("L_Knee", _xyz(rng.uniform(100, 135)), crouch, mirror=True)
    track.add("L_Knee", _xyz(rng.uniform(0, 40)), lying, mirror=True)
    track.add("L_Shoulder", _xyz(-rng.uniform(20, 80), 0, -rng.uniform(0, 20)), crouch, mirror=True)
    track.add("Spine1", _xyz(rng.uniform(15, 35)), crouch)
    track.add("Neck", _xyz(rng.uniform(10, 30) if face_up else -30.0), lying)


def _dance(track: _Track, rng: np.random.Generator, w: np.ndarray) -> None:
    """Stepping to a beat (knees bouncing, weight shifting side to side, a slow turn) with wide arm
    gestures: both arms raised sideways and swinging, out of phase, elbows opening and closing."""
    beat = rng.uniform(0.8, 1.4)  # steps per second
    phase = 2 * np.pi * beat * track.t + rng.uniform(0, 2 * np.pi)
    bounce = 0.5 * (1 - np.cos(2 * phase))
    track.add("L_Knee", _xyz(rng.uniform(10, 35) * bounce), w, mirror=True)
    track.add("L_Hip", _xyz(-10 * bounce), w, mirror=True)
    for side, sign in (("L", 1.0), ("R", -1.0)):
        arm = phase * rng.uniform(0.5, 1.0) + rng.uniform(0, 2 * np.pi)
        track.add_side(side, "Hip", _xyz(0, 0, 6 + 6 * sign * np.sin(phase)), w)
        raise_deg = rng.uniform(60, 150) + 35 * np.sin(arm)
        track.add_side(side, "Shoulder", _xyz(35 * np.sin(arm + 1.0), 0, raise_deg), w)
        track.add_side(side, "Elbow", _xyz(0, -50 - 40 * np.sin(arm + 2.0)), w)
    track.roll += w * 6 * np.sin(phase)
    track.add("Spine2", _xyz(0, 10 * np.sin(phase), 8 * np.sin(phase)), w)
    track.yaw_rate += w * np.deg2rad(rng.uniform(-90, 90))


_DURATIONS = {  # seconds (min, max) of each action's envelope
    "idle": (1.0, 2.5),
    "walk": (2.0, 5.0),
    "turn": (1.0, 2.5),
    "arm_raise": (1.5, 3.0),
    "wave": (1.5, 3.0),
    "squat": (1.5, 3.0),
    "sit": (3.0, 5.0),
    "jump": (1.2, 1.8),
    "flip": (0.9, 1.4),
    "cartwheel": (1.0, 1.6),
    "crawl": (2.0, 4.0),
    "lie": (2.5, 4.5),
    "kick": (0.8, 1.4),
    "punch": (1.5, 3.0),
    "free": (1.5, 4.0),
    "run": (1.5, 3.0),
    "spin": (0.8, 1.4),
    "side_kick": (0.8, 1.4),
    "get_up": (2.5, 4.0),
    "dance": (2.0, 4.0),
}
_LOWER_BODY = ("idle", "walk", "turn", "squat", "sit", "jump")  # one at a time, cross-faded
_UPPER_BODY = ("arm_raise", "wave")  # overlaid on the lower-body timeline


def sample_motion(
    rng: np.random.Generator,
    num_frames: int,
    fps: float = 30.0,
    acrobatics: float = 0.0,
    free_limbs: float = 0.0,
    athletics: float = 0.0,
) -> Motion:
    """A random composed motion of ``num_frames`` frames (deterministic given ``rng``); each lower-body
    action is one of :data:`ACROBATICS` with probability ``acrobatics``, one of :data:`ATHLETICS` with
    probability ``athletics``, each upper-body one a free-limb excursion (:func:`_free`) with probability
    ``free_limbs`` (all 0: the draws of the upright repertoire only, as before)."""
    if num_frames < 2:
        raise ValueError(f"num_frames must be >= 2, got {num_frames}")
    if acrobatics + athletics > 1:
        raise ValueError(f"acrobatics + athletics must be <= 1, got {acrobatics} + {athletics}")
    t = np.arange(num_frames) / fps
    total = t[-1]
    track = _Track(t)
    _idle(track, rng)
    ramp = 0.5
    actions: list[tuple[str, float, float]] = []
    cursor = -rng.uniform(0, 1.0)
    while cursor < total:
        if acrobatics > 0 and rng.random() < acrobatics:
            name = ACROBATICS[rng.integers(len(ACROBATICS))]
        elif athletics > 0 and rng.random() < athletics / (1 - acrobatics):  # of the non-acrobatic ones
            name = ATHLETICS[rng.integers(len(ATHLETICS))]
        else:
            name = _LOWER_BODY[rng.choice(len(_LOWER_BODY), p=[0.1, 0.35, 0.15, 0.15, 0.12, 0.13])]
        start, end = cursor, cursor + rng.uniform(*_DURATIONS[name])
        _add_action(track, rng, name, start, end, ramp)
        actions.append((name, start, end))
        if name == "walk" and rng.random() < 0.5:  # curved walking path
            mid = rng.uniform(start, end)
            _add_action(track, rng, "turn", mid - 0.8, mid + 0.8, ramp)
            actions.append(("turn", mid - 0.8, mid + 0.8))
        cursor = end - ramp  # cross-fade with the next action
    cursor = rng.uniform(0, 1.5)
    while cursor < total:
        if rng.random() < 0.5:
            if free_limbs > 0 and rng.random() < free_limbs:
                name = "free"
            else:
                name = _UPPER_BODY[rng.integers(len(_UPPER_BODY))]
            start, end = cursor, cursor + rng.uniform(*_DURATIONS[name])
            _add_action(track, rng, name, start, end, ramp)
            actions.append((name, start, end))
            cursor = end
        cursor += rng.uniform(0.5, 2.0)
    return _finish(track, rng, fps, tuple(actions))


def _add_action(track: _Track, rng: np.random.Generator, name: str, start: float, end: float, ramp: float):
    timed = {
        "jump": _jump, "flip": _flip, "cartwheel": _cartwheel, "kick": _kick, "spin": _spin,
        "side_kick": _side_kick, "get_up": _get_up,
    }  # fmt: skip
    if name in timed:  # shaped by their own clock rather than by the envelope
        timed[name](track, rng, start, end)
        return
    w = envelope(track.t, start, end, ramp)
    if name == "idle":
        return  # the idle layer is always present underneath
    {
        "walk": _walk,
        "turn": _turn,
        "arm_raise": _arm_raise,
        "wave": _wave,
        "squat": _squat,
        "sit": _sit,
        "crawl": _crawl,
        "lie": _lie,
        "punch": _punch,
        "free": _free,
        "run": _run,
        "dance": _dance,
    }[name](track, rng, w)


def _finish(track: _Track, rng: np.random.Generator, fps: float, actions) -> Motion:
    lo, hi = JOINT_LIMITS_DEG[:, 0], JOINT_LIMITS_DEG[:, 1]  # (24, 3)
    angles = np.clip(track.angles, lo, hi)
    angles[:, 0] = 0.0
    euler = np.deg2rad(angles)  # (T, 24, 3)
    body = euler_to_axis_angle(euler)
    # Root: heading integrates the yaw rate; position integrates the forward speed along the heading.
    dt = 1.0 / fps
    heading = rng.uniform(-np.pi, np.pi) + np.concatenate([[0.0], np.cumsum(track.yaw_rate[:-1]) * dt])
    forward = np.stack([np.sin(heading), np.zeros_like(heading), np.cos(heading)], axis=-1)  # (T, 3)
    steps = track.speed[:, None] * forward * dt
    position = np.concatenate([np.zeros((1, 3)), np.cumsum(steps[:-1], axis=0)])
    # Pelvis height and backward shift implied by the legs (feet kept under the body).
    hip, knee = -euler[:, [1, 2], 0], euler[:, [4, 5], 0]  # (T, 2) thigh angle forward, knee flexion
    height = THIGH * np.cos(hip) + SHANK * np.cos(knee - hip)  # (T, 2)
    back = (THIGH * np.sin(hip) - SHANK * np.sin(knee - hip)).mean(axis=1)
    drop = height.max(axis=1) - (THIGH + SHANK)
    position = position - (track.feet_planted * back)[:, None] * forward
    position[:, 1] = track.feet_planted * drop + track.lift
    angles = np.stack([heading, np.deg2rad(track.lean), np.deg2rad(track.roll)], axis=-1)
    orient = Rotation.from_euler("YXZ", angles)
    pose = np.concatenate([orient.as_rotvec()[:, None], body[:, 1:]], axis=1).reshape(-1, 72)
    return Motion(pose=pose, trans=position, euler=euler, actions=actions, fps=fps)
