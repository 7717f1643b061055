"""What a user looks at: the result alone or source | driving | result, with region ellipses.

Region parameters live in the region predictor's heatmap grid (MRAA's convention, see
``MRAA_FACTS.md`` §3): ``shift`` μ is (x, y) in [−1, 1] over the **heatmap's own** ``H' × H'``
grid, and ``covar`` Σ is the heatmap's second central moment in the same units. With ``pad: 0``
that grid is smaller than the picture (26² for a 128² model: the 7×7 region conv loses 3 cells on
each side of the ``S·scale_factor`` hourglass grid), so a plain ``(μ + 1)/2 · S`` would draw every
region up to 12 % too close to the border. :class:`RegionGeometry` maps heatmap cell ``i`` to
hourglass cell ``i + 3 − pad`` and hourglass cell ``j`` to picture pixel ``j / scale_factor`` (the
anti-aliased downscale samples pixels ``0, 4, 8, …``).

Each region is drawn as its 1-σ ellipse (where the region's Gaussian ``exp(−½ (z−μ)ᵀ Σ⁻¹ (z−μ))``
falls to e^−½), one colour per region (hues evenly spaced, the same colours on every panel and
frame), with a dot at its centre: on the driving panel the driving frame's regions, on the result
panel the regions the generator was driven with (source regions moved by the driving motion).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import cv2
import numpy as np

from jamsdk.errors import InputError
from jamsdk.pixels import center_crop_resize

LAYOUTS = ("result", "side-by-side")
_CONV_HALF = 3  # the region conv is 7×7


@dataclass(frozen=True)
class RegionGeometry:
    """Affine map from the heatmap grid's [−1, 1] coordinates to model-picture pixels (centres).

    ``pixel = offset + (g + 1) · half_span`` on both axes, for a model picture of ``image_size``.
    """

    image_size: int
    offset: float
    half_span: float

    @classmethod
    def from_manifest(cls, manifest) -> "RegionGeometry":
        """The geometry of an exported model (``Animator.manifest``)."""
        rp = manifest.model.region_predictor
        return cls.for_model(manifest.image_size, rp.scale_factor, rp.pad)

    @classmethod
    def for_model(cls, image_size: int, scale_factor: float, pad: int) -> "RegionGeometry":
        step = int(round(1.0 / scale_factor))
        inner = -(-image_size // step)  # hourglass side: pixels 0, step, 2·step, … are sampled
        heat = inner - 2 * _CONV_HALF + 2 * pad
        return cls(image_size, float((_CONV_HALF - pad) * step), (heat - 1) / 2.0 * step)

    def to_pixels(self, shift: np.ndarray, covar: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
        """Centres ``(K, 2)`` and covariances ``(K, 2, 2)`` in pixels of a ``side × side`` panel."""
        k = side / float(self.image_size)
        mu = np.asarray(shift, np.float64).reshape(-1, 2)
        cov = np.asarray(covar, np.float64).reshape(-1, 2, 2)
        centres = ((self.offset + (mu + 1.0) * self.half_span) + 0.5) * k - 0.5
        return centres, cov * (self.half_span * k) ** 2


def region_colors(k: int) -> list[tuple[int, int, int]]:
    """``k`` distinct saturated RGB colours (evenly spaced hues), fixed per region index."""
    hsv = np.zeros((1, k, 3), np.uint8)
    hsv[0, :, 0] = (np.arange(k) * 180 // max(k, 1)).astype(np.uint8)
    hsv[0, :, 1:] = 255
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]
    return [tuple(int(c) for c in px) for px in rgb]


def draw_regions(panel: np.ndarray, params: Mapping[str, np.ndarray], geometry: RegionGeometry,
                 bgr: bool = False, thickness: int | None = None) -> np.ndarray:
    """A copy of the square ``panel`` with each region's 1-σ ellipse and centre drawn in its colour."""
    side = panel.shape[0]
    if panel.ndim != 3 or panel.shape[1] != side or panel.shape[2] != 3:
        raise InputError(f"draw_regions: expected a square (S, S, 3) panel, got {tuple(panel.shape)}")
    centres, covs = geometry.to_pixels(params["shift"], params["covar"], side)
    out = np.ascontiguousarray(panel.copy())
    thick = thickness or max(1, side // 160)
    shift_bits = 4  # sub-pixel drawing: cv2 takes fixed-point coordinates
    f = float(1 << shift_bits)
    for (cx, cy), cov, color in zip(centres, covs, region_colors(len(centres))):
        if not (np.isfinite(cov).all() and np.isfinite([cx, cy]).all()):
            continue
        evals, evecs = np.linalg.eigh((cov + cov.T) / 2.0)
        evals = np.clip(evals, 0.0, None)
        # Axes: √λ along each eigenvector; angle of the first axis (cv2 wants degrees).
        axes = (int(round(np.sqrt(evals[1]) * f)), int(round(np.sqrt(evals[0]) * f)))
        angle = float(np.degrees(np.arctan2(evecs[1, 1], evecs[0, 1])))
        col = color[::-1] if bgr else color
        centre = (int(round(cx * f)), int(round(cy * f)))
        cv2.ellipse(out, centre, axes, angle, 0, 360, col, thick, cv2.LINE_AA, shift_bits)
        cv2.circle(out, centre, int(round(max(1.5, thick * 1.5) * f)), col, -1, cv2.LINE_AA, shift_bits)
    return out


def compose(result: np.ndarray, *, layout: str = "result", source: np.ndarray | None = None,
            driving: np.ndarray | None = None, regions: Mapping[str, Mapping[str, np.ndarray]] | None = None,
            geometry: RegionGeometry | None = None, bgr: bool = False) -> np.ndarray:
    """The frame a user sees.

    Args:
        result: the animated ``(S, S, 3)`` picture (``Animator.run``'s output).
        layout: ``"result"`` (just it) or ``"side-by-side"`` (``source | driving | result``, each
            panel ``S × S``; source and driving centre-cropped like the model's input).
        source, driving: the source picture and the raw driving frame (side-by-side only).
        regions: ``Animator.last_regions`` to draw (None: no overlay); needs ``geometry``.
        bgr: pictures are BGR (colours are swapped to match).

    Returns:
        ``(S, S, 3)`` or ``(S, 3·S, 3)`` uint8.
    """
    if layout not in LAYOUTS:
        raise InputError(f"layout: expected one of {LAYOUTS}, got {layout!r}")
    if regions is not None and geometry is None:
        raise InputError("compose: regions need a RegionGeometry (RegionGeometry.from_manifest)")
    side = result.shape[0]
    out = result
    if regions is not None:
        out = draw_regions(result, regions["transferred"], geometry, bgr)
    if layout == "result":
        return out
    if source is None or driving is None:
        raise InputError("side-by-side layout: expected the source picture and the driving frame")
    src = center_crop_resize(np.ascontiguousarray(source), side)
    drv = center_crop_resize(np.ascontiguousarray(driving), side)
    if regions is not None:
        drv = draw_regions(drv, regions["driving"], geometry, bgr)
    return np.ascontiguousarray(np.concatenate([src, drv, out], axis=1))


__all__ = ["LAYOUTS", "RegionGeometry", "compose", "draw_regions", "region_colors"]
