"""Local problems of the sweeping (DMRG-style) fitter: closed-form ridge solves and truncated splits.

A multilinear network's prediction is linear in any merged pair of cores M: y_b = <M, Phi_b> + intercept,
with Phi_b the contraction of the input row b with every other core (the local feature tensor).  In the
mixed-canonical gauge the other cores form an isometry, so ||W||_F = ||M||_F and the local ridge problem

    min_{M, b}  sum_b (y_b - <M, Phi_b> - b)^2 + lam ||M||^2

is the global ridge problem restricted to M: one ``lam`` means the same at every step.  The intercept is
unpenalised (eliminated by centring Phi and y).  The solve goes through an eigendecomposition of the
normal equations (primal p x p Gram when p <= n, dual n x n kernel otherwise), so a whole grid of ``lam``
costs one decomposition: validation error, generalised cross-validation (GCV, exact for the local
linear smoother) and the Bayesian evidence are evaluated for every ``lam`` in closed form.

Evidence (type-II maximum likelihood, MacKay 1992): with the prior M ~ N(0, s^2/lam I) and noise
N(0, s^2), the centred targets are Gaussian with covariance s^2 (I + Pc Pc^T / lam).  With the
eigenvalues e_r of Pc Pc^T, the coordinates q_r of yc on its eigenvectors, and s^2 profiled out,

    -2 log p(yc | lam) = n' log(Q / n') + sum_r log(1 + e_r / lam) + const,
    Q = sum_r q_r^2 / (1 + e_r / lam) + (||yc||^2 - sum_r q_r^2),

(n' = n - 1 with the intercept).  It uses every row, none held out, which matters most for small data sets.

Row weights w_b (``weights``) turn every solve into weighted ridge, sum_b w_b (y_b - <M, Phi_b> - b)^2 +
lam ||M||^2: the rows and targets are scaled by sqrt(w_b) after centring on the weighted means, so the
eigendecomposition, GCV and the evidence (noise variance s^2 / w_b per row) are those of the scaled problem.
The sweeps use it for the Huber loss by iteratively reweighted least squares (:mod:`tnmat.training.sweep`).

Derivative rows (force matching): a row that is the derivative of a prediction with respect to an atomic
position, Phi'_b = dPhi/dr, predicts <M, Phi'_b> with no intercept (the constant has no derivative).  With
``intercept_rows`` (a mask c_b: 1 for energy rows, 0 for derivative rows) the model is
y_b = <M, Phi_b> + c_b b; eliminating the unpenalised b exactly centres only the rows with c_b = 1 (on their
weighted means mu, ybar) and leaves the others as they are: b = ybar - <M, mu>.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

#: how a local solve chooses its ridge strength (see :func:`ridge_local_solve`)
SELECTIONS = ("validation", "gcv", "evidence", "fixed")

__all__ = ["SELECTIONS", "LocalSolution", "ridge_local_solve", "truncated_split", "regularised_loss", "refine_split"]


@dataclass(frozen=True)
class LocalRows:
    """Held-out rows of a local problem: features (n, p), targets (n,), optional row weights (> 0) and the
    mask of the rows that carry the intercept (None: all)."""

    phi: torch.Tensor
    y: torch.Tensor
    weights: torch.Tensor | None = None
    intercept_rows: torch.Tensor | None = None


@dataclass(frozen=True)
class LocalSolution:
    """Solution of one local ridge problem (float64, standardised target units)."""

    m: torch.Tensor  # (p,) the merged tensor, flattened
    intercept: float
    lam: float
    train_mse: float
    val_mse: float | None
    gcv: float | None


def regularised_loss(phi: torch.Tensor, y: torch.Tensor, m: torch.Tensor, b: float, lam: float,
                     weights: torch.Tensor | None = None) -> float:
    """sum_b w_b (y_b - <m, phi_b> - b)^2 + lam ||m||^2 (the objective every local solve minimises; w = 1
    without ``weights``)."""
    r = y - phi @ m - b
    wr = r if weights is None else weights.to(r) * r
    return float(r @ wr + lam * (m @ m))


def _scores(e: torch.Tensor, proj: torch.Tensor, yc_sq: float, lams: torch.Tensor, n: int
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Training residual sum of squares and GCV for every lam, from the eigenvalues e of the Gram matrix and
    the projections proj of the centred target on its eigenvectors (filter f = e / (e + lam))."""
    f = e[None, :] / (e[None, :] + lams[:, None])  # (L, r)
    rss = yc_sq - ((2 * f - f * f) * proj[None, :] ** 2).sum(1)
    dof = f.sum(1) + 1.0  # + the intercept
    gcv = n * rss.clamp_min(0) / (n - dof).clamp_min(1e-12) ** 2
    return rss.clamp_min(0), gcv


def _neg_log_evidence(e: torch.Tensor, proj: torch.Tensor, yc_sq: float, lams: torch.Tensor, n_eff: int
                      ) -> torch.Tensor:
    """-2 log marginal likelihood (up to a constant) of every lam, noise variance profiled out (module
    docstring).  lam = 0 (an improper prior) scores +inf."""
    ratio = e[None, :] / lams.clamp_min(1e-300)[:, None]  # (L, r)
    outside = max(yc_sq - float((proj**2).sum()), 0.0)
    q = (proj[None, :] ** 2 / (1 + ratio)).sum(1) + outside
    score = n_eff * torch.log(q.clamp_min(1e-300) / n_eff) + torch.log1p(ratio).sum(1)
    return torch.where(lams > 0, score, torch.full_like(score, math.inf))


def ridge_local_solve(phi: torch.Tensor, y: torch.Tensor, lams: Sequence[float], *, select: str = "validation",
                      val: LocalRows | None = None, fit_intercept: bool = True, weights: torch.Tensor | None = None,
                      intercept_rows: torch.Tensor | None = None) -> LocalSolution:
    """Solve the local ridge problem for every ``lam`` in ``lams`` and keep the one chosen by ``select``:
    ``"validation"`` (lowest MSE on the held-out rows ``val``, weighted by their weights when given), ``"gcv"``
    (lowest GCV), ``"evidence"`` (highest marginal likelihood, module docstring) or ``"fixed"``
    (``lams[0]``).  ``weights``: row weights (> 0) of the training rows (module docstring); ``train_mse``
    is then the weighted mean.  ``intercept_rows`` (and ``val.intercept_rows``): boolean masks of the rows that
    carry the intercept (None: all; the others are derivative rows, module docstring).

    ``lam = 0`` gives the minimum-norm least-squares solution (eigenvalues below 1e-12 of the largest are
    dropped).  float64 throughout."""
    phi = phi.to(torch.float64).reshape(phi.shape[0], -1)
    y = y.to(torch.float64)
    n, p = phi.shape
    if select == "validation" and val is None:
        raise ValueError("ridge_local_solve: select='validation' needs held-out rows (val)")
    if select not in SELECTIONS:
        raise ValueError(f"ridge_local_solve: select={select!r}; choose one of {', '.join(SELECTIONS)}")
    lam_t = torch.as_tensor([float(v) for v in lams], dtype=torch.float64)
    if select == "fixed":
        lam_t = lam_t[:1]
    w = None if weights is None else weights.to(torch.float64).reshape(-1)
    if w is not None and (len(w) != n or not bool((w > 0).all()) or not bool(torch.isfinite(w).all())):
        raise ValueError(f"ridge_local_solve: weights must be {n} finite positive numbers")
    c = _mask(intercept_rows, n)
    if fit_intercept and intercept_rows is None:
        mu = phi.mean(0) if w is None else (w @ phi) / w.sum()
        ybar = float(y.mean()) if w is None else float(w @ y / w.sum())
    elif fit_intercept:  # weighted means over the rows that carry the intercept
        wc = c if w is None else c * w
        mu, ybar = (wc @ phi) / wc.sum(), float(wc @ y / wc.sum())
    else:
        mu, ybar = torch.zeros(p, dtype=torch.float64), 0.0
    pc, yc = (phi - mu, y - ybar) if intercept_rows is None else (phi - c[:, None] * mu, y - c * ybar)
    if w is not None:  # weighted ridge = ridge on rows scaled by sqrt(w)
        pc, yc = pc * w.sqrt()[:, None], yc * w.sqrt()
    n_w = n if w is None else float(w.sum())
    if p <= n:  # primal: G = Pc^T Pc = V diag(e) V^T; m(lam) = V (V^T Pc^T yc) / (e + lam)
        e, v = torch.linalg.eigh(pc.T @ pc)
        proj = v.T @ (pc.T @ yc) / e.clamp_min(1e-300).sqrt()  # coordinates of yc on the left singular vectors
    else:  # dual: K = Pc Pc^T = U diag(e) U^T; m(lam) = Pc^T U (U^T yc) / (e + lam)
        e, u = torch.linalg.eigh(pc @ pc.T)
        proj = u.T @ yc
    keep = e > 1e-12 * float(e.max().clamp_min(1e-300))
    e, proj = e[keep], proj[keep]
    basis = v[:, keep] if p <= n else u[:, keep]
    rss, gcv = _scores(e, proj, float(yc @ yc), lam_t, n)  # weighted rows: rss is the weighted sum
    # coefficients on the basis for every lam: primal m = V c, c = sqrt(e) proj / (e + lam);
    # dual m = Pc^T U c, c = proj / (e + lam)
    num = e.sqrt() * proj if p <= n else proj
    coef = num[None, :] / (e[None, :] + lam_t[:, None])  # (L, r)
    val_mse = None
    if val is not None:
        cv = _mask(val.intercept_rows, val.phi.shape[0])[:, None]
        pv = val.phi.to(torch.float64).reshape(val.phi.shape[0], -1) - cv * mu
        zv = pv @ basis if p <= n else (pv @ pc.T) @ basis  # (n_val, r)
        pred = zv @ coef.T + cv * ybar  # (n_val, L)
        sq = (pred - val.y.to(torch.float64)[:, None]) ** 2
        if val.weights is None:
            val_mse = sq.mean(0)
        else:
            wv = val.weights.to(torch.float64).reshape(-1, 1)
            val_mse = (wv * sq).sum(0) / wv.sum()
    if select == "validation":
        i = int(torch.argmin(val_mse))
    elif select == "gcv":
        i = int(torch.argmin(gcv))
    elif select == "evidence":
        i = int(torch.argmin(_neg_log_evidence(e, proj, float(yc @ yc), lam_t, n - 1 if fit_intercept else n)))
    else:
        i = 0
    m = basis @ coef[i] if p <= n else pc.T @ (basis @ coef[i])
    b = ybar - float(mu @ m)
    return LocalSolution(m=m, intercept=b, lam=float(lam_t[i]), train_mse=float(rss[i]) / n_w,
                         val_mse=None if val_mse is None else float(val_mse[i]), gcv=float(gcv[i]))


def _mask(rows: torch.Tensor | None, n: int) -> torch.Tensor:
    """The intercept mask c_b as float64 (all ones without a mask)."""
    if rows is None:
        return torch.ones(n, dtype=torch.float64)
    if len(rows) != n or not bool(rows.to(torch.bool).any()):
        raise ValueError(f"ridge_local_solve: intercept_rows must mark some of the {n} rows")
    return rows.to(torch.float64).reshape(-1)


def truncated_split(mat: torch.Tensor, max_rank: int, cutoff: float, *, absorb: str
                    ) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Split ``mat`` (m x n) by a truncated SVD into (left (m, r), right (r, n)), keeping the singular values
    above ``cutoff`` times the largest, at most ``max_rank`` (at least one).  ``absorb="right"`` gives an
    isometric left factor U and right S V^T; ``"left"`` gives U S and an isometric right factor V^T.
    Returns also the discarded weight sum_{i > r} s_i^2 / sum_i s_i^2."""
    u, s, vh = torch.linalg.svd(mat, full_matrices=False)
    s0 = float(s[0]) if len(s) else 0.0
    r = int((s > cutoff * s0).sum()) if s0 > 0 else 1
    r = max(1, min(r, int(max_rank)))
    total = float((s * s).sum())
    discarded = float((s[r:] * s[r:]).sum()) / total if total > 0 else 0.0
    u, s, vh = u[:, :r], s[:r], vh[:r]
    if absorb == "right":
        return u, s[:, None] * vh, discarded
    if absorb == "left":
        return u * s[None, :], vh, discarded
    raise ValueError(f"truncated_split: absorb={absorb!r}; choose 'left' or 'right'")


def refine_split(feats: list[torch.Tensor], left: torch.Tensor, right: torch.Tensor,
                 solve: Callable[[list[torch.Tensor], dict], tuple[torch.Tensor, float]], step: dict, *,
                 absorb: str, n_solves: int, install: Callable[[torch.Tensor, torch.Tensor], None]
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank-constrained ridge fit of a split merged pair M = left @ right by alternating single-factor solves.

    ``feats[i]`` (rows, A, B) are the local features of M (A x B) on data set i.  The truncated SVD keeps
    the largest singular values of M, which is the best rank-r approximation of the *weights*, not of the
    predictions: a direction with a small weight can carry much of the fit (on the alloys' TTN, merged pair
    training RMSE 0.0059, after the split and one re-solve 0.0159, standardised).  So the factors are
    re-solved in turn, ``n_solves`` local ridge solves in all (reduced-rank ridge regression by alternating
    least squares), ending on the factor that carries the norm (``absorb``: ``"right"`` -> ``left`` stays
    isometric, the last solve is ``right``).  Before each solve the other factor is made isometric by a QR
    decomposition (its R pushed into the factor being solved), so the local ridge penalty stays the global
    one and each solve at a fixed strength never increases the regularised loss.  ``install(left, right)``
    writes the factors into the network before each solve; the returned factors are the last ones.
    ``n_solves = 1`` is the plain re-solve of the norm-carrying factor."""
    if absorb not in ("left", "right"):
        raise ValueError(f"refine_split: absorb={absorb!r}; choose 'left' or 'right'")
    order = ["right", "left"] if absorb == "right" else ["left", "right"]
    # the solves alternate and end on the norm carrier: the first solve is the norm carrier iff n_solves is odd
    sides = [order[(n_solves - 1 - i) % 2] for i in range(n_solves)]
    carrier = absorb  # the factor holding the norm (the other one is isometric)
    for side in sides:
        if side == "right":
            if carrier == "left":  # make left isometric: left = Q R, R moves onto right
                q, r = torch.linalg.qr(left)
                left, right = q, r @ right
            install(left, right)
            proj = [torch.einsum("nab,ar->nrb", f, left) for f in feats]
            m, _ = solve(proj, {**step, "stage": "refine", "side": "right", "current": right.reshape(-1)})
            right = m.reshape(right.shape)
            carrier = "right"
        else:
            if carrier == "right":  # make right isometric (orthonormal rows): right = R^T Q^T, R^T onto left
                q, r = torch.linalg.qr(right.T)
                left, right = left @ r.T, q.T
            install(left, right)
            proj = [torch.einsum("nab,rb->nar", f, right) for f in feats]
            m, _ = solve(proj, {**step, "stage": "refine", "side": "left", "current": left.reshape(-1)})
            left = m.reshape(left.shape)
            carrier = "left"
    install(left, right)
    return left, right
