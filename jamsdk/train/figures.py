"""Synthetic articulated figures: a parametric pose, its rendering, and whole clips (numpy + OpenCV).

Each clip shows one figure in the spirit of the MGif data set: an elliptical body with a head on
a neck, a two-segment tail and two to four two-segment limbs (legs, sometimes arms or wings).
Every joint swings smoothly (sinusoids with per-joint amplitude and phase), and the whole figure
drifts, rotates and breathes a little in scale, so a clip contains both articulated and global
motion. Backgrounds are static gradients with soft blobs; all colours vary per clip.

A figure's :class:`Pose` at a time is separate from its body (proportions, colours), so another
figure's pose can be drawn on it: the held-out animation pairs (:mod:`jamsdk.train.pairs`) render
their ground truth that way. Everything is a pure function of the ``np.random.Generator`` passed in.
The data set writer built on :func:`render_clip` is :mod:`jamsdk.train.synth`.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from jamsdk.errors import InputError

# Pixel coordinates are passed to OpenCV as fixed point with this many fractional bits, so parts
# move by sub-pixel amounts instead of jumping whole pixels.
_SHIFT = 4
_ONE = 1 << _SHIFT

# Part ids of the label maps returned with ``with_labels=True``.
BACKGROUND, BODY, HEAD, TAIL, FIRST_LIMB = 0, 1, 2, 3, 4

__all__ = ["BACKGROUND", "BODY", "FIRST_LIMB", "HEAD", "TAIL", "Canvas", "Figure", "Pose", "background",
           "render_clip"]


# ---------------------------------------------------------------------------------------------
# Geometry helpers


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return (255.0 * r, 255.0 * g, 255.0 * b)


def _ellipse_pts(center: np.ndarray, rx: float, ry: float, angle: float, n: int = 40) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    c, s = np.cos(angle), np.sin(angle)
    x, y = rx * np.cos(t), ry * np.sin(t)
    return np.stack([center[0] + c * x - s * y, center[1] + s * x + c * y], axis=1)


def _capsule_pts(a: np.ndarray, b: np.ndarray, radius: float, n: int = 12) -> np.ndarray:
    """Outline of a segment with round ends (convex), from ``a`` to ``b``."""
    d = b - a
    ang = np.arctan2(d[1], d[0]) if np.hypot(*d) > 1e-6 else 0.0
    t1 = ang + np.linspace(-np.pi / 2, np.pi / 2, n)  # cap around b
    t0 = ang + np.linspace(np.pi / 2, 3 * np.pi / 2, n)  # cap around a
    cap_b = b + radius * np.stack([np.cos(t1), np.sin(t1)], axis=1)
    cap_a = a + radius * np.stack([np.cos(t0), np.sin(t0)], axis=1)
    return np.concatenate([cap_b, cap_a])


class Canvas:
    """Draws convex shapes into an RGB frame and, optionally, a part-label map."""

    def __init__(self, background: np.ndarray, labels: bool) -> None:
        self.image = background.copy()
        self.labels = np.zeros(background.shape[:2], np.uint8) if labels else None

    def fill(self, pts: np.ndarray, color: tuple[float, float, float], part: int | None = None) -> None:
        fixed = np.round(pts * _ONE).astype(np.int32)
        cv2.fillConvexPoly(self.image, fixed, color, cv2.LINE_AA, _SHIFT)
        if part is not None and self.labels is not None:
            cv2.fillConvexPoly(self.labels, fixed, part, cv2.LINE_8, _SHIFT)


@dataclass(frozen=True)
class _Swing:
    """A smooth periodic value: ``base + amp · sin(omega · t + phase)``."""

    base: float
    amp: float
    omega: float
    phase: float

    def at(self, t: float) -> float:
        return self.base + self.amp * np.sin(self.omega * t + self.phase)


@dataclass(frozen=True)
class _Chain:
    """A chain of segments hanging from an anchor point on the body (body coordinates)."""

    part: int  # label id of the first segment; later segments use part + 1 (limbs) or the same id
    anchor: tuple[float, float]
    lengths: tuple[float, ...]
    radius: float
    angles: tuple[_Swing, ...]  # first: absolute in the body frame; then relative to the parent
    fill: tuple[float, float, float]
    outline: tuple[float, float, float]
    per_segment_ids: bool

    def angles_at(self, t: float) -> tuple[float, ...]:
        return tuple(swing.at(t) for swing in self.angles)

    def joints(self, angles: tuple[float, ...]) -> list[np.ndarray]:
        """Joint positions (body frame) for per-segment angles (see :attr:`angles`)."""
        p = np.array(self.anchor, dtype=np.float64)
        pts, ang = [p], 0.0
        for length, a in zip(self.lengths, angles):
            ang += a
            p = p + length * np.array([np.cos(ang), np.sin(ang)])
            pts.append(p)
        return pts


@dataclass(frozen=True)
class Pose:
    """Everything about a figure that changes over time (its proportions and colours do not).

    ``angles`` holds one tuple of per-segment joint angles (radians, body frame) per chain, in
    the order limbs…, tail, neck; ``center`` (pixels) includes the walk's bob; ``rot`` is before
    mirroring; ``scale`` multiplies every length.
    """

    angles: tuple[tuple[float, ...], ...]
    head_tilt: float
    center: tuple[float, float]
    rot: float
    scale: float


class Figure:
    """A random articulated figure; :meth:`draw` renders it at time ``t`` (in frames)."""

    def __init__(self, rng: np.random.Generator, size: int, like: "Figure | None" = None) -> None:
        # ``like``: copy its structure (limb count, which limbs are arms, mirroring) so that the two
        # figures' joints correspond one to one; every other draw stays this figure's own.
        S = float(size)
        u = rng.uniform
        self.size = S
        # ---- colours: the figure's hue sits well away from the background's
        self.bg_hue = u(0.0, 1.0)
        hue = self.bg_hue + u(0.25, 0.75)
        sat, val = u(0.45, 0.95), u(0.45, 0.9)
        self.body_fill = _hsv(hue, sat, val)
        self.outline = _hsv(hue, sat, val * u(0.15, 0.35))
        limb_hue = hue + u(-0.06, 0.06)
        self.near_fill = _hsv(limb_hue, sat, min(1.0, val * u(0.95, 1.15)))
        self.far_fill = _hsv(limb_hue, sat, val * u(0.6, 0.8))
        self.head_fill = _hsv(hue + u(-0.05, 0.05), sat * u(0.7, 1.0), min(1.0, val * u(0.95, 1.2)))
        spot_fill = _hsv(hue + u(0.3, 0.7), u(0.3, 0.9), u(0.3, 1.0))
        # ---- body (body frame: origin at the body centre, x forward, y down, pixels at scale 1)
        self.rx = u(0.13, 0.19) * S
        self.ry = self.rx * u(0.5, 0.8)
        self.spots = [
            (np.array([u(-0.6, 0.6) * self.rx, u(-0.5, 0.5) * self.ry]),
             u(0.12, 0.3) * self.ry, u(0.08, 0.2) * self.ry, u(0, np.pi), spot_fill)
            for _ in range(int(rng.integers(0, 4)))
        ]
        self.line = max(1.0, 0.012 * S)  # outline width
        # ---- walk cycle shared by limbs, slower global motion
        walk = 2 * np.pi / u(14.0, 30.0)
        self.chains: list[_Chain] = []
        n_limbs = int(rng.integers(2, 5))
        if like is not None:
            n_limbs = len(like.arms)
        arms = []
        xs = np.linspace(-0.6, 0.6, n_limbs) * self.rx + u(-0.08, 0.08, n_limbs) * self.rx
        leg_r = u(0.022, 0.035) * S
        for i in range(n_limbs):
            arm = rng.random() < 0.25  # some limbs point up: arms or wings
            if like is not None:
                arm = like.arms[i]
            arms.append(arm)
            base = -np.pi / 2 + u(-0.6, 0.6) if arm else np.pi / 2 + u(-0.35, 0.35)
            phase = u(0, 2 * np.pi) if arm else np.pi * (i % 2) + u(-0.4, 0.4)
            far = i % 2 == 1
            self.chains.append(_Chain(
                part=FIRST_LIMB + 2 * i,
                anchor=(float(xs[i]), (-0.45 if arm else 0.45) * self.ry),
                lengths=(u(0.09, 0.15) * S, u(0.08, 0.14) * S),
                radius=leg_r * u(0.85, 1.15),
                angles=(_Swing(base, u(0.35, 0.8), walk, phase),
                        _Swing(u(-0.7, 0.7), u(0.3, 0.7), walk, phase + u(0.5, 2.0))),
                fill=self.far_fill if far else self.near_fill,
                outline=self.outline,
                per_segment_ids=True,
            ))
        self.arms = tuple(arms)
        self.far = self.chains[1::2]  # drawn behind the body
        self.near = self.chains[0::2]
        wag = 2 * np.pi / u(10.0, 26.0)
        self.tail = _Chain(
            part=TAIL, anchor=(-0.92 * self.rx, -0.25 * self.ry),
            lengths=(u(0.07, 0.12) * S, u(0.06, 0.11) * S), radius=u(0.012, 0.024) * S,
            angles=(_Swing(np.pi + u(-0.9, 0.3), u(0.3, 0.6), wag, u(0, 2 * np.pi)),
                    _Swing(u(-0.6, 0.6), u(0.3, 0.7), wag, u(0, 2 * np.pi))),
            fill=self.body_fill, outline=self.outline, per_segment_ids=False,
        )
        nod = 2 * np.pi / u(16.0, 40.0)
        self.neck = _Chain(
            part=HEAD, anchor=(0.75 * self.rx, -0.45 * self.ry),
            lengths=(u(0.05, 0.1) * S,), radius=u(0.025, 0.04) * S,
            angles=(_Swing(-np.pi / 4 + u(-0.4, 0.3), u(0.15, 0.4), nod, u(0, 2 * np.pi)),),
            fill=self.body_fill, outline=self.outline, per_segment_ids=False,
        )
        self.head_r = u(0.055, 0.085) * S
        self.head_aspect = u(0.65, 0.9)
        self.head_tilt = _Swing(u(-0.3, 0.3), u(0.1, 0.3), nod, u(0, 2 * np.pi))
        # ---- global motion: slow drift, rotation and scale about a centre placed so limbs fit
        slow = lambda: 2 * np.pi / u(40.0, 120.0)  # noqa: E731
        self.cx = _Swing(u(0.42, 0.58) * S, u(0.02, 0.08) * S, slow(), u(0, 2 * np.pi))
        self.cy = _Swing(u(0.38, 0.46) * S, u(0.01, 0.04) * S, slow(), u(0, 2 * np.pi))
        self.bob = u(0.0, 0.015) * S  # the body bobs with the walk cycle
        self.walk = walk
        self.rot = _Swing(u(-0.15, 0.15), u(0.03, 0.15), slow(), u(0, 2 * np.pi))
        self.scale = _Swing(u(0.85, 1.05), u(0.02, 0.06), slow(), u(0, 2 * np.pi))
        self.mirror = 1.0 if rng.random() < 0.5 else -1.0
        if like is not None:
            self.mirror = like.mirror

    @property
    def all_chains(self) -> list[_Chain]:
        """Limbs, tail, neck: the order of :attr:`Pose.angles`."""
        return [*self.chains, self.tail, self.neck]

    def pose(self, t: float) -> Pose:
        """The figure's pose at time ``t`` (in frames)."""
        return Pose(
            angles=tuple(chain.angles_at(t) for chain in self.all_chains),
            head_tilt=self.head_tilt.at(t),
            center=(self.cx.at(t), self.cy.at(t) + self.bob * np.sin(2 * self.walk * t)),
            rot=self.rot.at(t),
            scale=self.scale.at(t),
        )

    def size_at(self, pose: Pose) -> float:
        """A length that grows with the figure on screen (body half-length × scale)."""
        return self.rx * pose.scale

    def _world(self, pose: Pose) -> Callable[[np.ndarray], np.ndarray]:
        c = np.array(pose.center)
        th, s = pose.rot * self.mirror, pose.scale
        m = s * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]]) @ np.diag([self.mirror, 1.0])
        return lambda p: np.atleast_2d(p) @ m.T + c

    def _chain(self, cv: Canvas, chain: _Chain, angles: tuple[float, ...], world: Callable, scale: float) -> None:
        pts = [world(p)[0] for p in chain.joints(angles)]
        r = chain.radius * scale
        for k, (a, b) in enumerate(zip(pts[:-1], pts[1:])):
            part = chain.part + k if chain.per_segment_ids else chain.part
            cv.fill(_capsule_pts(a, b, r + self.line * scale), chain.outline, part)
            cv.fill(_capsule_pts(a, b, r), chain.fill, part)

    def draw(self, cv: Canvas, t: float) -> None:
        self.draw_pose(cv, self.pose(t))

    def draw_pose(self, cv: Canvas, pose: Pose) -> None:
        world = self._world(pose)
        scale = pose.scale
        th = pose.rot * self.mirror
        angles = dict(zip(map(id, self.all_chains), pose.angles))
        for chain in self.far:
            self._chain(cv, chain, angles[id(chain)], world, scale)
        self._chain(cv, self.tail, angles[id(self.tail)], world, scale)
        center = world(np.zeros(2))[0]
        body_angle = th if self.mirror > 0 else th + np.pi
        o = self.line * scale
        cv.fill(_ellipse_pts(center, self.rx * scale + o, self.ry * scale + o, body_angle), self.outline, BODY)
        cv.fill(_ellipse_pts(center, self.rx * scale, self.ry * scale, body_angle), self.body_fill, BODY)
        for offset, a, b, ang, color in self.spots:
            cv.fill(_ellipse_pts(world(offset)[0], a * scale, b * scale, body_angle + ang * self.mirror), color)
        for chain in self.near:
            self._chain(cv, chain, angles[id(chain)], world, scale)
        # Neck, then the head at its end, tilted relative to the neck.
        self._chain(cv, self.neck, angles[id(self.neck)], world, scale)
        joints = self.neck.joints(angles[id(self.neck)])
        d = joints[-1] - joints[-2]
        head_angle_body = np.arctan2(d[1], d[0]) * 0.5 + pose.head_tilt
        hc_body = joints[-1] + 0.6 * self.head_r * np.array([np.cos(head_angle_body), np.sin(head_angle_body)])
        hc = world(hc_body)[0]
        hang = (th + head_angle_body) if self.mirror > 0 else (th + np.pi - head_angle_body)
        hr, ha = self.head_r * scale, self.head_r * self.head_aspect * scale
        cv.fill(_ellipse_pts(hc, hr + o, ha + o, hang), self.outline, HEAD)
        cv.fill(_ellipse_pts(hc, hr, ha, hang), self.head_fill, HEAD)
        # An eye gives the head an orientation a motion model can lock on to.
        eye = world(hc_body + self.head_r * np.array([0.35, -0.25]))[0]
        cv.fill(_ellipse_pts(eye, 0.28 * hr, 0.28 * hr, 0.0, 16), (255.0, 255.0, 255.0))
        pupil = world(hc_body + self.head_r * np.array([0.45, -0.25]))[0]
        cv.fill(_ellipse_pts(pupil, 0.13 * hr, 0.13 * hr, 0.0, 12), (20.0, 20.0, 20.0))


def background(rng: np.random.Generator, size: int, hue: float) -> np.ndarray:
    """A smooth static background: a two-colour linear gradient plus a few soft blobs."""
    u = rng.uniform
    S = size
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float32) / max(S - 1, 1)
    ang = u(0, 2 * np.pi)
    ramp = (np.cos(ang) * (xx - 0.5) + np.sin(ang) * (yy - 0.5)) / np.sqrt(0.5) * 0.5 + 0.5
    c0 = np.array(_hsv(hue + u(-0.08, 0.08), u(0.05, 0.4), u(0.7, 1.0)), np.float32)
    c1 = np.array(_hsv(hue + u(-0.15, 0.15), u(0.05, 0.5), u(0.55, 1.0)), np.float32)
    img = c0 + (c1 - c0) * np.clip(ramp, 0, 1)[..., None]
    for _ in range(int(rng.integers(2, 6))):
        cx, cy, r = u(0, 1), u(0, 1), u(0.08, 0.3)
        w = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))[..., None] * u(0.2, 0.5)
        color = np.array(_hsv(hue + u(-0.2, 0.2), u(0.1, 0.6), u(0.5, 1.0)), np.float32)
        img = img * (1 - w) + color * w
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def render_clip(
    rng: np.random.Generator, frames: int, size: int, *, with_labels: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Render one clip of a random articulated figure.

    Args:
        rng: the only source of randomness; the same generator state gives the same clip.
        frames: number of frames (≥ 1).
        size: frame height and width in pixels (≥ 16).
        with_labels: also return per-pixel part labels (0 background, 1 body, 2 head and neck,
            3 tail, 4 + 2·i and 5 + 2·i the upper and lower segment of limb ``i``).

    Returns:
        ``(frames, size, size, 3)`` uint8 RGB, and with ``with_labels`` also the
        ``(frames, size, size)`` uint8 label maps.

    Raises:
        InputError: ``frames`` or ``size`` out of range.
    """
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
        raise InputError(f"expected frames ≥ 1, got {frames!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 16:
        raise InputError(f"expected size ≥ 16 pixels, got {size!r}")
    figure = Figure(rng, int(size))
    bg = background(rng, int(size), figure.bg_hue)
    video = np.empty((frames, size, size, 3), np.uint8)
    labels = np.empty((frames, size, size), np.uint8) if with_labels else None
    t0 = rng.uniform(0, 200)  # start anywhere in the motion cycles
    for i in range(frames):
        canvas = Canvas(bg, with_labels)
        figure.draw(canvas, t0 + i)
        video[i] = canvas.image
        if labels is not None:
            labels[i] = canvas.labels
    return (video, labels) if with_labels else video
