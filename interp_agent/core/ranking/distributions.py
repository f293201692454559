"""The few distribution functions the ranking needs, without importing scipy.

Importing ``scipy.special`` costs ~0.25 s (its array-API layer pulls in numpy.testing and
f2py), more than all the work of ranking a small records file, and every p-value and
interval of a report needs one of these. So they are computed here, from the standard
library and numpy, and checked against scipy in ``tests/core/test_distributions.py``
(Student-t tails agree to 1e-8 relative up to 10^4 degrees of freedom, 1e-7 up to 10^7,
and, for tails above 1e-10, 1e-5 beyond, where the normal stands in for the t):

- :func:`student_t_sf`: the upper tail of Student's t, through the regularized incomplete
  beta function, evaluated by its continued fraction (modified Lentz; Numerical Recipes,
  3rd ed., section 6.4), vectorised over features;
- :func:`student_t_ppf`: its inverse, by bisection on :func:`student_t_sf`;
- :func:`normal_ppf`: ``statistics.NormalDist.inv_cdf`` (Wichura's AS 241);
- :func:`find_root`: bisection for a bracketed root of a scalar function.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

import numpy as np

_EPS = 1e-15
_TINY = 1e-300
_MAX_TERMS = 20_000
"""The fraction needs about sqrt(max(a, b)) terms near its switch point: ~2,300 at df = 1e7."""
_NORMAL_DF = 1e7
"""Above this many degrees of freedom Student's t is the normal to ~1e-8, and is computed as one."""


def _betacf(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Continued fraction of the incomplete beta function (converges fast for x < (a + 1) / (a + b + 2)).

    Each element stops at its own convergence; the loop runs on the elements still open.
    """
    h = np.empty_like(x)
    idx = np.arange(x.size)
    a, b, x = a.ravel(), b.ravel(), x.ravel()
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = np.ones_like(x)
    d = 1.0 - qab * x / qap
    d = 1.0 / np.where(np.abs(d) < _TINY, _TINY, d)
    hh = d.copy()
    for m in range(1, _MAX_TERMS + 1):
        m2 = 2 * m
        step = np.ones_like(x)
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / np.where(np.abs(d) < _TINY, _TINY, d)
            c = 1.0 + aa / c
            c = np.where(np.abs(c) < _TINY, _TINY, c)
            step = d * c
            hh = hh * step
        done = np.abs(step - 1.0) < _EPS
        if done.any():
            h.flat[idx[done]] = hh[done]
            keep = ~done
            idx = idx[keep]
            a, b, x, qab, qap, qam, c, d, hh = (v[keep] for v in (a, b, x, qab, qap, qam, c, d, hh))
            if idx.size == 0:
                break
    h.flat[idx] = hh  # not converged within _MAX_TERMS (not reached for df <= _NORMAL_DF)
    return h


def regularized_beta(
    a: np.ndarray, b: np.ndarray, x: np.ndarray, one_minus_x: np.ndarray | None = None
) -> np.ndarray:
    """I_x(a, b), the regularized incomplete beta function, elementwise (a, b > 0; 0 <= x <= 1).

    ``one_minus_x``, when the caller can compute it without cancellation (x near 1), keeps
    the precision that ``1 - x`` would lose.
    """
    y = 1.0 - np.asarray(x, dtype=np.float64) if one_minus_x is None else one_minus_x
    a, b, x, y = (np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(a, b, x, y))
    out = np.where(y <= 0.0, 1.0, 0.0)
    inside = (x > 0.0) & (y > 0.0)
    if not inside.any():
        return out
    a_i, b_i, x_i, y_i = a[inside], b[inside], x[inside], y[inside]
    # log B(a, b) per distinct (a, b): few distinct degrees of freedom, and math.lgamma is scalar
    pairs, which = np.unique(np.stack([a_i, b_i], axis=1), axis=0, return_inverse=True)
    log_beta = np.array([math.lgamma(p) + math.lgamma(q) - math.lgamma(p + q) for p, q in pairs])[which.ravel()]
    front = np.exp(a_i * np.log(x_i) + b_i * np.log(y_i) - log_beta)
    direct = x_i < (a_i + 1.0) / (a_i + b_i + 2.0)
    value = np.empty_like(x_i)
    if direct.any():
        value[direct] = front[direct] * _betacf(a_i[direct], b_i[direct], x_i[direct]) / a_i[direct]
    flip = ~direct
    if flip.any():  # the symmetry I_x(a, b) = 1 - I_{1-x}(b, a) keeps the fraction in its fast range
        value[flip] = 1.0 - front[flip] * _betacf(b_i[flip], a_i[flip], y_i[flip]) / b_i[flip]
    out[inside] = np.clip(value, 0.0, 1.0)
    return out


def student_t_sf(t: np.ndarray | float, df: np.ndarray | float) -> np.ndarray:
    """P(T > t) for Student's t with ``df`` degrees of freedom (scipy's ``stdtr(df, -t)``), elementwise."""
    t, df = (np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(t, df))
    tail = np.empty_like(t)  # P(T > |t|)
    normal = df > _NORMAL_DF
    if normal.any():
        # a frompyfunc ufunc: an object array (or a bare float for one element)
        tail[normal] = 0.5 * np.asarray(_erfc(np.abs(t[normal]) / math.sqrt(2.0)), dtype=np.float64)
    beta = ~normal
    if beta.any():
        tb, dfb = t[beta], df[beta]
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(np.isinf(tb), 0.0, dfb / (dfb + tb * tb))
            y = np.where(np.isinf(tb), 1.0, tb * tb / (dfb + tb * tb))
        tail[beta] = 0.5 * regularized_beta(dfb / 2.0, np.full_like(dfb, 0.5), x, y)
    return np.where(t >= 0.0, tail, 1.0 - tail)


_erfc = np.frompyfunc(math.erfc, 1, 1)


def student_t_ppf(q: float, df: float) -> float:
    """The ``q`` quantile of Student's t with ``df`` degrees of freedom (scipy's ``stdtrit(df, q)``)."""
    if not 0.0 < q < 1.0 or not df > 0:
        raise ValueError(f"student_t_ppf needs 0 < q < 1 and df > 0, got q={q!r}, df={df!r}")
    if q == 0.5:
        return 0.0
    upper = abs(normal_ppf(q)) * 2.0 + 1.0  # grow a bracket: t quantiles exceed normal ones
    while float(student_t_sf(upper, df)) > min(q, 1.0 - q):
        upper *= 2.0
    magnitude = find_root(lambda t: float(student_t_sf(t, df)) - min(q, 1.0 - q), 0.0, upper)
    return magnitude if q > 0.5 else -magnitude


def normal_ppf(q: float) -> float:
    """The ``q`` quantile of the standard normal (scipy's ``ndtri(q)``)."""
    return NormalDist().inv_cdf(q)


def find_root(f: Callable[[float], float], lo: float, hi: float, *, tol: float = 1e-13) -> float:
    """A root of ``f`` in [lo, hi], where f(lo) and f(hi) differ in sign, by bisection."""
    f_lo = f(lo)
    if f_lo == 0.0:
        return lo
    if f(hi) == 0.0:
        return hi
    if (f_lo > 0) == (f(hi) > 0):
        raise ValueError(f"find_root: f has the same sign at {lo!r} and {hi!r}; the interval brackets no root")
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        f_mid = f(mid)
        if f_mid == 0.0 or hi - lo < tol * max(1.0, abs(mid)):
            return mid
        if (f_mid > 0) == (f_lo > 0):
            lo, f_lo = mid, f_mid
        else:
            hi = mid
    return 0.5 * (lo + hi)
