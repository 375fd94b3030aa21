"""The beta-binomial tail test behind the rate detector.

Failures of a code in a window are modelled as x ~ BetaBinomial(n, a, b): the binomial
with a rate that itself varies from window to window around the baseline rate p, by a
coefficient of variation cv (``rate_cv``, or more where the series' own history shows
it). The rate is Beta(a, b) with mean p and variance (cv p)^2, so a + b + 1 =
(1 - p) / (p cv^2). Said as a relative variation, the same setting suits a code at 7 %
and one at 0.2 % (an intra-class correlation would make the rare code's rate swing by
90 %). The baseline itself is an estimate from ``base_n`` attempts; its uncertainty adds
to the rate's variance (p (1 - p) / (base_n + 1), the beta-binomial predictive of a rate
seen in base_n attempts), so a quiet shortcode with a thin baseline needs more evidence
than a busy one. The score is -log10 of P(X >= x), capped at MAX_SCORE.

The tail is summed here, vectorised, from the log-pmf (scipy.special): the first
TERMS terms from x up, plus a geometric bound of the rest (past the mode the ratio of
successive terms only falls). scipy.stats.betabinom.sf gives the same values (the
tests compare them) but sums each value in a Python loop: a backfill of months has
~100,000 of them. Only values where the guards (enough failures, enough rise) hold and
the standardised excess z = (x - n p) / sd is at least Z_MIN are summed: these counts
are right-skewed (p < 1/2), so their exact tail is heavier than the normal one, and
z < 2 means a tail above ~2 %, far from any alert level; their score is left at 0.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, gammaln, logsumexp

MAX_SCORE = 15.0  # scores are capped: past 1e-15 the difference means nothing to an operator
Z_MIN = 2.0
TERMS = 48


def _logpmf(k, n, a, b):
    return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1) + betaln(k + a, n - k + b) - betaln(a, b)


def log_tail(x: np.ndarray, n: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log P(X >= x) for X ~ BetaBinomial(n, a, b), for x above the mode.

    Sums TERMS terms from x up, every ``step`` values where the spread is wide (step =
    6 sd / TERMS: the rule covers six standard deviations; with step 1 it is exact),
    with the end correction of the rule, plus a geometric bound of what lies beyond."""
    sd = np.sqrt(n * a * b * (a + b + n) / ((a + b) ** 2 * (a + b + 1)))
    step = np.maximum(1.0, np.ceil(6 * sd / TERMS))
    k = x[None, :] + np.arange(TERMS)[:, None] * step[None, :]
    terms = np.where(k <= n, _logpmf(np.minimum(k, n), n, a, b), -np.inf)
    # step * sum f(x + j step) - (step - 1) / 2 * f(x): the rectangle rule with its end correction
    head = logsumexp(np.stack([logsumexp(terms, axis=0) + np.log(step), terms[0]]), axis=0,
                     b=np.stack([np.ones_like(step), -(step - 1) / 2]))
    last = x + (TERMS - 1) * step  # beyond it: at most pmf(last) * r / (1 - r) per value, r the ratio at last
    ratio = (n - last) * (last + a) / ((last + 1) * (n - last - 1 + b))
    rest = np.where((last < n) & (ratio < 1), terms[-1] + np.log(np.clip(ratio, 1e-300, None))
                    - np.log1p(-np.clip(ratio, 0, 1 - 1e-12)), -np.inf)
    return np.logaddexp(head, rest)


def tail_score(x: np.ndarray, n: np.ndarray, p: np.ndarray, cv,
               base_n: np.ndarray | None = None) -> np.ndarray:
    """-log10 P(X >= x) for X ~ BetaBinomial(n, mean p, rate variation cv, widened by a
    baseline of base_n attempts), elementwise."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return np.zeros(0)
    n = np.rint(np.asarray(n, dtype=np.float64))
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    cv = np.asarray(cv, dtype=np.float64)
    rel_var = cv ** 2 * p / (1 - p)  # var(rate) / (p (1 - p)) = 1 / (a + b + 1)
    if base_n is not None:
        rel_var = rel_var + 1.0 / (np.asarray(base_n, dtype=np.float64) + 1.0)
    rel_var = np.clip(rel_var, 1e-12, 0.5)
    k = 1.0 / rel_var - 1.0  # a + b
    sd = np.sqrt(n * p * (1 - p) * (n + k) / (1 + k))
    score = np.zeros(x.shape)
    far = (x - n * p) >= Z_MIN * sd
    n, p, k = (np.broadcast_to(v, x.shape) for v in (n, p, k))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_sf = log_tail(np.rint(x[far]), n[far], p[far] * k[far], (1 - p[far]) * k[far])
    log_sf = np.where(np.isfinite(log_sf), np.minimum(log_sf, 0.0), 0.0)
    score[far] = np.minimum(-log_sf / np.log(10), MAX_SCORE)
    return score
