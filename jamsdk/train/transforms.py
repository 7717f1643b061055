"""Random smooth warps for the equivariance losses: an affine map plus a thin-plate spline.

``T(z) = θ·[z; 1] + Σ_j w_j · U(‖z − c_j‖₁)`` maps coordinates of the *transformed* frame to the
original frame (in the model's (x, y) ∈ [−1, 1] convention), so ``transformed(z) = frame(T(z))``:

* θ = [I | 0] + N(0, σ_affine²) per sample (2×3);
* c_j: a ``points × points`` grid of control points spanning [−1, 1];
* w_j ∈ R²: N(0, σ_tps²) per sample, control point and axis (the textbook TPS with one weight
  vector per control point);
* U(r) = r²·log(r + 1e−6) with r the L1 distance (MRAA_FACTS §9).

The Jacobian of T at given points comes from autograd (``create_graph=True``, so the equivariance
loss can back-propagate through it). Training only; never exported.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from jamsdk.model.blocks import coordinate_grid


class RandomTPS:
    """One random warp per batch item.

    Args:
        batch: number of warps to draw.
        sigma_affine: std of the affine perturbation.
        sigma_tps: std of the spline weights.
        points: control points per side.
        generator: CPU generator to draw from (the trainer owns one, so resumes are exact).
        device: where the parameters live.
        dtype: parameter dtype.
        rows: keep only these of the ``batch`` drawn warps (a process's share of the global batch
            under DDP: every process draws the global batch's warps from the same generator, so
            each sample gets the warp it would get in a single process).
    """

    def __init__(self, batch: int, sigma_affine: float, sigma_tps: float, points: int = 5,
                 generator: torch.Generator | None = None, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32, rows: slice | None = None):
        # Drawn on the CPU whatever the device, so the same seed gives the same warps on CPU and GPU.
        noise = torch.randn(batch, 2, 3, generator=generator) * sigma_affine
        weights = torch.randn(batch, points * points, 2, generator=generator) * sigma_tps
        if rows is not None:
            noise, weights = noise[rows], weights[rows]
        self.theta = (torch.eye(2, 3).unsqueeze(0) + noise).to(device=device, dtype=dtype)
        self.control_points = coordinate_grid(points, points, dtype, device).reshape(1, 1, points * points, 2)
        self.control_weights = weights.to(device=device, dtype=dtype)

    def warp_coordinates(self, coords: torch.Tensor) -> torch.Tensor:
        """T applied to points ``(B, N, 2)`` → ``(B, N, 2)``."""
        theta = self.theta.to(coords.dtype)
        a, t = theta[:, None, :, :2], theta[:, None, :, 2]
        out = (a * coords.unsqueeze(-2)).sum(-1) + t
        r = (coords.unsqueeze(2) - self.control_points.to(coords.dtype)).abs().sum(-1)  # (B, N, P²)
        u = r * r * torch.log(r + 1e-6)
        return out + torch.einsum("bnp,bpc->bnc", u, self.control_weights.to(coords.dtype))

    def jacobian(self, coords: torch.Tensor) -> torch.Tensor:
        """dT/dz at points ``(B, N, 2)`` → ``(B, N, 2, 2)`` (rows: output x, y; columns: d/dx, d/dy)."""
        if not coords.requires_grad:
            coords = coords.detach().requires_grad_(True)
        with torch.enable_grad():
            new = self.warp_coordinates(coords)
            gx = torch.autograd.grad(new[..., 0].sum(), coords, create_graph=True)[0]
            gy = torch.autograd.grad(new[..., 1].sum(), coords, create_graph=True)[0]
        return torch.stack([gx, gy], dim=-2)

    def transform_frame(self, frame: torch.Tensor) -> torch.Tensor:
        """Resample ``frame`` (B, C, H, W) so that ``out(z) = frame(T(z))`` (bilinear, reflection padding).

        ``align_corners=True`` because T lives in the inclusive [−1, 1] pixel-centre frame that
        :func:`coordinate_grid` (and the region moments) use: the identity warp is then exactly the
        identity image, and a region found at z in the output sits at T(z) in the input. (MRAA samples
        with ``align_corners=False`` here, which shrinks every warp by (S−1)/S.)
        """
        b, _, h, w = frame.shape
        grid = coordinate_grid(h, w, frame.dtype, frame.device).reshape(1, h * w, 2).expand(b, h * w, 2)
        grid = self.warp_coordinates(grid).reshape(b, h, w, 2)
        return F.grid_sample(frame, grid, mode="bilinear", padding_mode="reflection", align_corners=True)
