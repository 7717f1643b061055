"""The closed-form 2×2 solver against torch.linalg / CPU torch.svd (the MRAA convention)."""

import pytest
import torch

from jamsdk.model import linalg2x2 as L


def random_spd(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, 2, 2, generator=g)
    # Scales over many orders of magnitude, as heatmap covariances of different region sizes.
    scale = torch.exp(2.0 * torch.randn(n, 1, 1, generator=g))
    return (a @ a.transpose(1, 2)) * scale


def test_eig_matches_cpu_svd_on_many_random_spd_matrices():
    cov = random_spd(120_000, seed=0)
    u_ref, s_ref, _ = torch.svd(cov)
    u, s = L.sym_eig(cov)
    # Same eigenvectors AND signs as LAPACK (MRAA_FACTS §17), same ordering.
    assert (u - u_ref).abs().max().item() < 1e-4
    rel = ((s - s_ref).abs() / s_ref[:, :1]).max().item()
    assert rel < 1e-5
    # And the eigenvalues agree with the symmetric solver too.
    s_eigh = torch.linalg.eigvalsh(cov.double()).flip(-1).float()
    assert ((s - s_eigh).abs() / s_eigh[:, :1]).max().item() < 1e-5


def test_pca_affine_matches_mraa_formula():
    cov = random_spd(50_000, seed=1)
    u_ref, s_ref, _ = torch.svd(cov)
    ref = u_ref @ torch.diag_embed(s_ref.sqrt())
    assert (L.pca_affine(cov) - ref).abs().max().item() < 2e-4 * ref.abs().max().item()


@pytest.mark.parametrize(
    "cov",
    [
        [[1.0, 0.0], [0.0, 2.0]],  # diagonal, p < r
        [[2.0, 0.0], [0.0, 1.0]],  # diagonal, p > r
        [[1.0, 0.0], [0.0, 1.0]],  # isotropic
        [[0.0, 0.0], [0.0, 0.0]],  # zero
        [[1e-30, 0.0], [0.0, 1e-30]],  # tiny isotropic
        [[1e-12, 3e-13], [3e-13, 2e-12]],  # tiny
        [[1e30, 2e29], [2e29, 5e29]],  # huge
        [[1.0, 0.999], [0.999, 1.0]],  # near singular
        [[1.0, 1.0], [1.0, 1.0]],  # singular
        [[4e-3, -1e-3], [-1e-3, 2.5e-3]],  # a typical region covariance
    ],
)
def test_edge_cases_reconstruct_and_match_svd(cov):
    c = torch.tensor([cov], dtype=torch.float32)
    u, s = L.sym_eig(c)
    assert torch.isfinite(u).all() and torch.isfinite(s).all()
    assert (s >= 0).all() and s[0, 0] >= s[0, 1]
    # Orthogonal, and U S Uᵀ rebuilds the input.
    assert torch.allclose(u[0] @ u[0].T, torch.eye(2), atol=1e-6)
    rebuilt = u @ torch.diag_embed(s) @ u.transpose(-1, -2)
    assert torch.allclose(rebuilt, c, rtol=1e-5, atol=1e-6 * c.abs().max().item() + 1e-37)
    u_ref, s_ref, _ = torch.svd(c)
    assert torch.allclose(s, s_ref, rtol=1e-5, atol=1e-6 * s_ref.max().item() + 1e-37)
    if s_ref[0, 0] > s_ref[0, 1] * (1 + 1e-5):  # distinct eigenvalues: eigenvectors are unique up to sign
        assert torch.allclose(u, u_ref, atol=1e-5)


@pytest.mark.parametrize(
    "cov",
    [
        [[1.0, 0.0], [0.0, 1.0]],
        [[1.0, 0.0], [0.0, 2.0]],
        [[1.0, 0.999999], [0.999999, 1.0]],
        [[1e-12, 0.0], [0.0, 1e-12]],
        [[1e12, 1e11], [1e11, 3e11]],
        [[0.0, 0.0], [0.0, 0.0]],
    ],
)
def test_gradients_are_finite(cov):
    c = torch.tensor([cov], dtype=torch.float32, requires_grad=True)
    out = L.pca_affine(c).sum() + L.sym_eig(c)[1].sum()
    (grad,) = torch.autograd.grad(out, c)
    assert torch.isfinite(grad).all()


def test_inverse_and_matmul_match_torch():
    g = torch.Generator().manual_seed(3)
    m = torch.randn(10_000, 2, 2, generator=g) + 3 * torch.eye(2)
    assert torch.allclose(L.inverse(m), torch.linalg.inv(m), rtol=1e-5, atol=1e-5)
    n = torch.randn(10_000, 2, 2, generator=g)
    assert torch.allclose(L.matmul(m, n), m @ n, atol=1e-5)


def test_inverse_of_singular_matrix_is_finite():
    m = torch.tensor([[[1.0, 2.0], [2.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]])
    assert torch.isfinite(L.inverse(m)).all()


def test_solver_uses_only_elementwise_ops():
    # The exporter must never see svd/inverse/atan: trace the solver and list the ops it calls.
    ops = set()

    class Recorder(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            ops.add(getattr(func, "__name__", str(func)))
            return func(*args, **(kwargs or {}))

    with Recorder():
        L.pca_affine(random_spd(4, seed=5))
        L.inverse(random_spd(4, seed=6))
    forbidden = {n for n in ops if any(bad in n.lower() for bad in ("svd", "inv", "atan", "eig", "det"))}
    assert not forbidden, forbidden
