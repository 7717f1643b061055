"""Closed-form 2×2 linear algebra from elementwise ops only (no SVD, Inverse, Atan, loops).

Used everywhere the model needs a 2×2 inverse or the PCA of a region covariance: in training, in
the exported ONNX graphs and (through the same formulas in numpy) in the runtime, so one sign
convention holds end to end. Everything here runs in FP32; the FP16 export keeps it in FP32 because
region covariances (σ² ≈ 2.5e-3 in normalised coordinates) have determinants below FP16's smallest
normal number.

Eigenvector sign convention (MRAA_FACTS §17). CPU ``torch.svd`` (LAPACK ``gesdd``) of a symmetric
positive semi-definite ``[[p, q], [q, r]]`` returns ``U`` whose columns are the eigenvectors in
descending eigenvalue order with these signs, which we reproduce exactly:

* ``q == 0`` (already diagonal): the Householder step is the identity, so ``U = I`` when ``p ≥ r``
  and ``U = [[0, 1], [1, 0]]`` when ``p < r``.
* otherwise ``U = [[a, b], [b, -a]]`` (always a reflection, det −1) where ``(a, b)`` is the unit
  leading eigenvector with its sign chosen as LAPACK's bidiagonal step chooses it: with
  ``n² = p² + q²`` and ``det = p·r − q²``, when ``det ≤ n²`` (no swap inside ``dlasv2``) the sign
  makes ``a ≤ 0``; when ``det > n²`` it makes ``p·b − q·a ≥ 0``.

MRAA's released checkpoints (and the AVD network and relative mode trained on them) saw exactly
this convention; jamsdk uses it for its own models too, so there is one convention everywhere.
Near-isotropic covariances (equal eigenvalues to float precision) have no unique eigenvectors and
LAPACK's choice there follows its rounding; the decomposition is still exact (U·S·Uᵀ = Σ).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def inverse(m: "torch.Tensor", eps: float = 1e-30) -> "torch.Tensor":
    """Inverse of a batch of 2×2 matrices ``(..., 2, 2)`` by the adjugate formula.

    ``|det|`` is kept ≥ ``eps`` (sign preserved) so a singular input gives large finite values
    rather than inf/NaN; for well-conditioned inputs the result equals ``torch.linalg.inv``.
    """
    import torch

    a, b = m[..., 0, 0], m[..., 0, 1]
    c, d = m[..., 1, 0], m[..., 1, 1]
    det = a * d - b * c
    det = torch.where(det >= 0, det.clamp(min=eps), det.clamp(max=-eps))
    inv_det = 1.0 / det
    row0 = torch.stack([d * inv_det, -b * inv_det], dim=-1)
    row1 = torch.stack([-c * inv_det, a * inv_det], dim=-1)
    return torch.stack([row0, row1], dim=-2)


def matmul(x: "torch.Tensor", y: "torch.Tensor") -> "torch.Tensor":
    """Product of batches of 2×2 matrices, written out (broadcasting, no MatMul of tiny operands)."""
    import torch

    x00, x01, x10, x11 = x[..., 0, 0], x[..., 0, 1], x[..., 1, 0], x[..., 1, 1]
    y00, y01, y10, y11 = y[..., 0, 0], y[..., 0, 1], y[..., 1, 0], y[..., 1, 1]
    row0 = torch.stack([x00 * y00 + x01 * y10, x00 * y01 + x01 * y11], dim=-1)
    row1 = torch.stack([x10 * y00 + x11 * y10, x10 * y01 + x11 * y11], dim=-1)
    return torch.stack([row0, row1], dim=-2)


def sym_eig(cov: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor"]:
    """Eigendecomposition of symmetric PSD 2×2 matrices ``(..., 2, 2)`` with LAPACK's signs.

    Returns ``(u, s)``: ``u`` ``(..., 2, 2)`` with eigenvectors as columns (descending order, the
    sign convention in the module docstring) and ``s`` ``(..., 2)`` the eigenvalues, descending and
    ≥ 0. ``u`` and ``s`` equal CPU ``torch.svd(cov)[:2]``. Values and gradients stay finite for
    isotropic, diagonal, singular, tiny (1e-30) and huge (1e30) inputs.
    """
    import torch

    p, r = cov[..., 0, 0], cov[..., 1, 1]
    q = 0.5 * (cov[..., 0, 1] + cov[..., 1, 0])
    # Work on a unit-scale copy so squares neither underflow nor overflow in FP32.
    scale = torch.maximum(torch.maximum(p.abs(), r.abs()), q.abs())
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    ps, qs, rs = p / scale, q / scale, r / scale

    half_sum = 0.5 * (ps + rs)
    half_diff = 0.5 * (ps - rs)
    gap2 = half_diff * half_diff + qs * qs
    # sqrt has an infinite derivative at 0 (isotropic input); the clamp keeps gradients finite.
    tiny = gap2 <= 1e-30
    gap = torch.where(tiny, torch.zeros_like(gap2), torch.sqrt(gap2.clamp(min=1e-30)))
    l1 = half_sum + gap
    det = ps * rs - qs * qs
    # l2 = det / l1 is accurate when the matrix is nearly singular (l1 - gap would cancel).
    l2 = torch.where(l1 > 0, det / torch.where(l1 > 0, l1, torch.ones_like(l1)), torch.zeros_like(l1))
    l2 = torch.minimum(l2, l1).clamp(min=0.0)
    l1 = l1.clamp(min=0.0)

    # Leading eigenvector: pick the better-conditioned of the two equivalent formulas.
    use_x = half_diff >= 0
    vx = torch.where(use_x, half_diff + gap, qs)
    vy = torch.where(use_x, qs, gap - half_diff)
    n2 = vx * vx + vy * vy
    degenerate = n2 <= 1e-30
    inv_n = torch.rsqrt(torch.where(degenerate, torch.ones_like(n2), n2))
    vx = torch.where(degenerate, torch.ones_like(vx), vx * inv_n)
    vy = torch.where(degenerate, torch.zeros_like(vy), vy * inv_n)

    # LAPACK's sign (see the module docstring).
    swap = det > ps * ps + qs * qs
    flip = torch.where(swap, ps * vy - qs * vx < 0, vx > 0)
    sign = torch.where(flip, -torch.ones_like(vx), torch.ones_like(vx))
    a, b = vx * sign, vy * sign

    diagonal = q == 0
    p_ge_r = p >= r
    one, zero = torch.ones_like(a), torch.zeros_like(a)
    u00 = torch.where(diagonal, torch.where(p_ge_r, one, zero), a)
    u10 = torch.where(diagonal, torch.where(p_ge_r, zero, one), b)
    u01 = torch.where(diagonal, torch.where(p_ge_r, zero, one), b)
    u11 = torch.where(diagonal, torch.where(p_ge_r, one, zero), -a)
    u = torch.stack([torch.stack([u00, u01], dim=-1), torch.stack([u10, u11], dim=-1)], dim=-2)
    s = torch.stack([l1, l2], dim=-1) * scale.unsqueeze(-1)
    return u, s


def pca_affine(cov: "torch.Tensor") -> "torch.Tensor":
    """MRAA's region affine ``U · diag(√s)`` from covariances ``(..., 2, 2)``."""
    import torch

    u, s = sym_eig(cov)
    # sqrt'(0) is infinite; a floor far below any real covariance keeps gradients finite.
    root = torch.sqrt(s.clamp(min=1e-20))
    return u * root.unsqueeze(-2)
