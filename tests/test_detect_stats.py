"""The beta-binomial tail and the settings behind detection."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import betabinom

from mpesa_ops.config import ConfigError
from mpesa_ops.ingest.detect.settings import DEFAULTS, load_settings
from mpesa_ops.ingest.detect.stats import log_tail, tail_score


def test_vectorised_tail_matches_scipy():
    rng = np.random.default_rng(7)
    n = rng.integers(3, 20_000, 3000).astype(float)
    p = rng.uniform(0.001, 0.3, 3000)
    k = rng.uniform(50, 5000, 3000)
    a, b = p * k, (1 - p) * k
    sd = np.sqrt(n * p * (1 - p) * (n + k) / (1 + k))
    x = np.minimum(np.ceil(n * p + rng.uniform(2, 8, 3000) * sd), n)
    ours = log_tail(x, n, a, b) / np.log(10)
    with np.errstate(divide="ignore"):
        ref = np.log10(betabinom.sf(x - 1, n, a, b))
    usable = ref > -8  # below that scipy's 1 - cdf is itself rounding noise
    assert usable.sum() > 2000
    assert np.abs(ours - ref)[usable].max() < 0.05


def test_score_grows_with_failures_and_ignores_ordinary_counts():
    n = np.full(6, 200.0)
    p = np.full(6, 0.05)
    scores = tail_score(np.array([5.0, 10, 20, 30, 40, 60]), n, p, 0.2, np.full(6, 20_000.0))
    assert scores[0] == scores[1] == 0.0  # at or near the 10 expected: not worth a tail
    assert np.all(np.diff(scores[2:]) > 0) and scores[-1] > 10


def test_thin_baseline_needs_more_evidence():
    x, n, p = np.array([12.0]), np.array([100.0]), np.array([0.05])
    assert tail_score(x, n, p, 0.2, np.array([300.0]))[0] < tail_score(x, n, p, 0.2, np.array([30_000.0]))[0]


def test_settings_from_secrets_and_their_errors():
    cfg = load_settings({"warn_p": 1e-6, "windows_minutes": [5, 30], "min_failures": 4})
    assert (cfg.warn_p, cfg.windows_minutes, cfg.min_failures) == (1e-6, (5, 30), 4)
    assert load_settings({}) == DEFAULTS
    with pytest.raises(ConfigError, match=r"\[detect\] warn_pp: not a detection setting"):
        load_settings({"warn_pp": 1})
    with pytest.raises(ConfigError, match=r"\[detect\] windows_minutes"):
        load_settings({"windows_minutes": [7]})
    with pytest.raises(ConfigError, match=r"\[detect\] min_failures"):
        load_settings({"min_failures": "three"})
