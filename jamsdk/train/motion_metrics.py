"""Motion metrics that blur cannot win: where the figure's parts went, and how the frames move.

Pixel L1 against the truth rewards a blurry output almost as much as a sharp one that moved: on short
clips a model that barely moves but blurs can beat no motion. The two metrics here score *where things
went* instead:

* **Part position error** (:func:`part_position_error`, synthetic pairs only). The renderer knows A's
  part-label maps and background (:mod:`jamsdk.train.pairs`). The fill colour of each part of the
  source picture is the most common colour of its labelled pixels; parts of the same (or a nearly
  equal) fill — body, tail and neck share one, so do the near and the far limbs — form one *colour
  group*. A pixel belongs to a group when that group's colour is the nearest of all groups' and
  nearer than the colour of A's background at that pixel (and within :data:`COLOUR_TOLERANCE`); in a
  ground-truth frame only the figure's pixels (label > 0) count. The error is the distance between a
  group's centroid in the output and in the truth, averaged over the groups visible in the truth, in
  pixels and as a fraction of the figure's size (the diagonal of its bounding box in the source
  picture). A group the output has lost (fewer than a tenth of its truth pixels) scores as if it had
  not moved (the distance from its centroid in the source picture): losing a part never beats keeping
  it still. Where it fails: parts of one colour group are located together (two legs swinging in
  opposite directions move their group's centroid little), a group hidden in the truth is skipped, a
  model that changes colours loses groups, and background pixels of a group's colour that the output
  changed pull that centroid.
* **Flow endpoint error** (:func:`flow_error`, any clip with ground truth: the pairs and real
  reconstruction clips). Optical flow (OpenCV's DIS, medium preset, on gray frames) between
  consecutive output frames against the same between consecutive truth frames: the mean length of
  the difference, in pixels per frame. A still output has zero flow, so its error is the truth's own
  mean flow: the no-motion baseline. Where it fails: it sees motion between frames, not position (an
  output that moves right but sits in the wrong place scores well; that is the part error's job);
  occluded and disoccluded pixels have no true flow, the estimator guesses there for both; moving
  backgrounds count like the figure; textureless regions give the estimator little to lock onto.

Both are zero for the truth itself (the part error up to the colour classifier's own error on the
truth frames, reported as the ground-truth baseline) and grow for an output that is still, late, or
a ghost; a blurred copy of the truth scores worse than the truth, never better (for the part error, a σ = 1 px
blur of the truth scored 0.1–1.4× no motion on 8 test pairs: a blurred dark outline passes through the
colour of a darker part).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from jamsdk.errors import InputError

# RGB distance (pixels in [0, 1]) within which a pixel may belong to a colour group (it must also be
# nearer the group's colour than the background's there). Fills are flat colours; anti-aliased edges
# and a model's blur move a pixel's colour by less than this inside a part.
COLOUR_TOLERANCE = 0.2
# Fills closer than this are one colour group: a blurred or slightly recoloured output could not be
# told apart between them.
MERGE_DISTANCE = 0.1
# A part needs this many pixels in the source to give its colour, a group this many in a truth frame
# to be scored there.
MIN_PIXELS = 6
# An output group with fewer than this share of its truth pixels is lost (scored as not moved).
LOST_SHARE = 0.1


@dataclass(frozen=True)
class ColourGroups:
    """The colour groups of a source picture: their fill colours (G, 3) in [0, 1] and part labels."""

    colours: np.ndarray
    labels: tuple[tuple[int, ...], ...]
    figure_size: float  # pixels: the diagonal of the figure's bounding box in the source
    # The figure's other flat colours (outline, eye, spots), (K, 3): a pixel nearest one of them is in
    # no group, so a blurred outline is not taken for a dark limb.
    others: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))


def _check_rgb(name: str, a: np.ndarray, ndim: int) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != ndim or a.shape[-1] != 3:
        want = "(S, S, 3)" if ndim == 3 else "(T, S, S, 3)"
        raise InputError(f"{name}: expected {want} RGB, got {tuple(a.shape)}")
    return a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)


def colour_groups(source: np.ndarray, source_labels: np.ndarray) -> ColourGroups:
    """Fill colour of each labelled part of ``source`` (uint8 or [0, 1] RGB), merged into colour groups."""
    src = _check_rgb("source", source, 3)
    labels = np.asarray(source_labels)
    if labels.shape != src.shape[:2]:
        raise InputError(f"source_labels: expected {src.shape[:2]}, got {labels.shape}")
    parts, fills = [], []
    for part in np.unique(labels):
        if part == 0:
            continue
        pixels = np.round(src[labels == part] * 255).astype(np.int64)
        if len(pixels) < MIN_PIXELS:
            continue
        keys, counts = np.unique(pixels[:, 0] << 16 | pixels[:, 1] << 8 | pixels[:, 2], return_counts=True)
        k = int(keys[np.argmax(counts)])  # the flat fill, not the outline, spots or eye
        parts.append(int(part))
        fills.append(np.array([k >> 16, (k >> 8) & 255, k & 255], np.float32) / 255.0)
    if not parts:
        raise InputError("source_labels: the source picture has no labelled figure")
    # Single-linkage merge of fills closer than MERGE_DISTANCE.
    group = list(range(len(parts)))
    for i in range(len(parts)):
        for j in range(i):
            if np.linalg.norm(fills[i] - fills[j]) < MERGE_DISTANCE:
                old, new = group[i], group[j]
                group = [new if g == old else g for g in group]
    ids = sorted(set(group))
    members = [tuple(p for p, g in zip(parts, group) if g == gid) for gid in ids]
    colours = np.stack([np.mean([f for f, g in zip(fills, group) if g == gid], axis=0) for gid in ids])
    ys, xs = np.nonzero(labels)
    size = float(np.hypot(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1))
    # The other flat colours: most common first, each far from the fills and from those found before.
    figure = np.round(src[labels > 0] * 255).astype(np.int64)
    keys, counts = np.unique(figure[:, 0] << 16 | figure[:, 1] << 8 | figure[:, 2], return_counts=True)
    others: list[np.ndarray] = []
    for k in keys[np.argsort(-counts)][:64]:
        if counts[keys == k][0] < MIN_PIXELS or len(others) == 8:
            break
        c = np.array([k >> 16, (k >> 8) & 255, k & 255], np.float32) / 255.0
        if all(np.linalg.norm(c - f) >= MERGE_DISTANCE for f in [*fills, *others]):
            others.append(c)
    return ColourGroups(colours.astype(np.float32), tuple(members), size,
                        np.array(others, np.float32).reshape(-1, 3))


def _group_masks(frame: np.ndarray, background: np.ndarray, groups: ColourGroups,
                 figure: np.ndarray | None = None) -> list[np.ndarray]:
    """One boolean (S, S) mask per group: pixels whose nearest colour is the group's (see the module notes)."""
    d = np.linalg.norm(frame[:, :, None, :] - groups.colours[None, None], axis=-1)
    nearest, dist = d.argmin(-1), d.min(-1)
    ok = (dist < COLOUR_TOLERANCE) & (dist < np.linalg.norm(frame - background, axis=-1))
    if len(groups.others):
        ok &= dist < np.linalg.norm(frame[:, :, None, :] - groups.others[None, None], axis=-1).min(-1)
    if figure is not None:
        ok &= figure
    return [ok & (nearest == g) for g in range(len(groups.colours))]


def _centroids(masks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(G, 2) centroids (x, y) and (G,) pixel counts of boolean masks (NaN where empty)."""
    out = np.full((len(masks), 2), np.nan)
    counts = np.zeros(len(masks))
    for g, mask in enumerate(masks):
        ys, xs = np.nonzero(mask)
        counts[g] = len(xs)
        if len(xs):
            out[g] = xs.mean(), ys.mean()
    return out, counts


def group_centroids(frames: np.ndarray, background: np.ndarray, groups: ColourGroups,
                    labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each group's centroid (T, G, 2) and pixel count (T, G) per frame; with the frames' part
    ``labels`` (T, S, S) only the figure's pixels count (the truth), without them colour decides alone."""
    frames = _check_rgb("frames", frames, 4)
    bg = _check_rgb("background", background, 3)
    if bg.shape != frames.shape[1:]:
        raise InputError(f"background: expected {frames.shape[1:]}, got {bg.shape}")
    if labels is not None and np.asarray(labels).shape != frames.shape[:3]:
        raise InputError(f"labels: expected {frames.shape[:3]}, got {np.asarray(labels).shape}")
    cents, counts = [], []
    for i, frame in enumerate(frames):
        figure = None if labels is None else np.asarray(labels[i]) > 0
        c, n = _centroids(_group_masks(frame, bg, groups, figure))
        cents.append(c)
        counts.append(n)
    return np.stack(cents), np.stack(counts)


class PartTruth:
    """The truth side of the part position error for one clip, computed once and scored against outputs.

    Args:
        truth: (T, S, S, 3) ground-truth frames, uint8 or float in [0, 1].
        truth_labels: (T, S, S) part labels of the truth frames.
        background: (S, S, 3) A's background without the figure.
        source: (S, S, 3) the source picture, whose colours define the groups.
        source_labels: (S, S) its part labels.
    """

    def __init__(self, truth: np.ndarray, truth_labels: np.ndarray, background: np.ndarray, source: np.ndarray,
                 source_labels: np.ndarray):
        self.groups = colour_groups(source, source_labels)
        self.background = background
        self.centroids, counts = group_centroids(truth, background, self.groups, truth_labels)
        self.counts = counts
        self.visible = counts >= MIN_PIXELS
        if not self.visible.any():
            raise InputError("truth: no colour group is visible in any frame")
        src, _ = group_centroids(np.asarray(source)[None], background, self.groups, np.asarray(source_labels)[None])
        # What a group that did not move scores (NaN where the source does not show it: one figure size).
        self.still = np.nan_to_num(np.linalg.norm(src - self.centroids, axis=-1), nan=self.groups.figure_size)

    def frame_errors(self, output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-frame part error in pixels (T,) (NaN where no group is visible in the truth) and the
        (T, G) mask of the scores where the output had lost the group."""
        cents, counts = group_centroids(output, self.background, self.groups)
        if cents.shape != self.centroids.shape:
            raise InputError(f"output: expected {len(self.centroids)} frames like the truth, got {len(cents)}")
        lost = self.visible & (counts < np.maximum(LOST_SHARE * self.counts, 1))
        err = np.where(lost, self.still, np.linalg.norm(cents - self.centroids, axis=-1))
        per_frame = np.array([e[v].mean() if v.any() else np.nan for e, v in zip(err, self.visible)])
        return per_frame, lost

    def error(self, output: np.ndarray) -> dict[str, float]:
        """``{"px": mean error in pixels, "frac": the same / figure size, "lost": share of the (frame,
        group) scores where the output had lost the group}``; per frame over the groups visible in the
        truth, then over frames."""
        per_frame, lost = self.frame_errors(output)
        px = float(np.nanmean(per_frame))
        return {"px": px, "frac": px / self.groups.figure_size,
                "lost": float(lost.sum() / self.visible.sum())}


def part_position_error(output: np.ndarray, truth: np.ndarray, truth_labels: np.ndarray, background: np.ndarray,
                        source: np.ndarray, source_labels: np.ndarray) -> dict[str, float]:
    """Part position error of an output clip against its truth (see the module notes and :class:`PartTruth`)."""
    return PartTruth(truth, truth_labels, background, source, source_labels).error(output)


# ---------------------------------------------------------------------------------------------
# Optical flow


def _gray(frames: np.ndarray) -> np.ndarray:
    f = np.asarray(frames)
    if f.dtype != np.uint8:
        f = np.clip(np.round(f.astype(np.float32) * 255), 0, 255).astype(np.uint8)
    return np.stack([cv2.cvtColor(np.ascontiguousarray(x), cv2.COLOR_RGB2GRAY) for x in f])


def frame_flows(frames: np.ndarray) -> np.ndarray:
    """DIS optical flow (medium preset) from each frame to the next: (T − 1, S, S, 2), pixels (x, y)."""
    gray = _gray(frames)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return np.stack([dis.calc(a, b, None) for a, b in zip(gray[:-1], gray[1:])]) if len(gray) > 1 \
        else np.zeros((0, *gray.shape[1:], 2), np.float32)


def flow_error(output: np.ndarray, truth: np.ndarray, truth_flows: np.ndarray | None = None) -> dict[str, float]:
    """Flow endpoint error of an output clip against its truth, and the truth's own mean flow.

    Args:
        output, truth: (T, S, S, 3) frames, uint8 or float in [0, 1], T ≥ 2.
        truth_flows: :func:`frame_flows` of ``truth``, when already computed.

    Returns:
        ``{"epe": mean |flow(output) − flow(truth)| in pixels per frame, "truth_flow": mean |flow(truth)|
        (the error of a still output)}``, each over pixels, then frames.
    """
    out = _check_rgb("output", output, 4)
    tru = _check_rgb("truth", truth, 4)
    if out.shape != tru.shape:
        raise InputError(f"output: expected {tru.shape} like the truth, got {out.shape}")
    if len(tru) < 2:
        raise InputError(f"flow error needs at least 2 frames, got {len(tru)}")
    tf = frame_flows(tru) if truth_flows is None else truth_flows
    of = frame_flows(out)
    return {"epe": float(np.linalg.norm(of - tf, axis=-1).mean()),
            "truth_flow": float(np.linalg.norm(tf, axis=-1).mean())}
