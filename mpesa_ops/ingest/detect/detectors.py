"""The four detectors. Each turns a Series into flags: for every alert key
(detector, code, shortcode), the buckets found anomalous with their evidence.

- ``rate``: the failures of a code in the last 5, 15 and 60 minutes against its baseline
  rate (beta-binomial tail, behind guards), per shortcode and over all shortcodes.
- ``pending``: the same test on payments still pending ``pending_after_minutes`` after
  their request (callbacks that never came).
- ``slow_burn``: a one-sided CUSUM of hourly rates against the rate of the week before,
  for gradual rises (insufficient funds before payday) no single window shows.
- ``volume``: attempts in the last 30 minutes far below the same time on earlier days
  (an outage can look like silence).

Everything is vectorised over (series, bucket); the scipy tail is computed only where
the guards hold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mpesa_ops.ingest.detect.series import ALL, TXN, Series
from mpesa_ops.ingest.detect.settings import DetectSettings
from mpesa_ops.ingest.detect.stats import tail_score

WARNING, CRITICAL = 1, 2
SEVERITY_NAMES = {WARNING: "warning", CRITICAL: "critical"}
PENDING_CODE = "pending"
VOLUME_CODE = "volume_drop"
BUCKETS_PER_HOUR, BUCKETS_PER_DAY = 12, 288
DISPERSION_CAP = 16.0


@dataclass
class Flags:
    """Anomalous buckets of one alert key, in time order. ``row`` is the series row (of
    ``x``, or of ``n`` for volume) the dashboard charts for it."""

    detector: str
    code: str
    shortcode: str
    row: int
    t: np.ndarray  # bucket offsets
    severity: np.ndarray
    score: np.ndarray
    window: np.ndarray  # minutes
    x: np.ndarray
    n: np.ndarray
    observed: np.ndarray
    baseline: np.ndarray
    agreeing: np.ndarray  # windows (of windows_minutes) anomalous in the bucket

    @property
    def key(self) -> str:
        return f"{self.detector}|{self.code}|{self.shortcode}"


def _cum(a: np.ndarray) -> np.ndarray:
    out = np.zeros(a.shape[:-1] + (a.shape[-1] + 1,))
    np.cumsum(a, axis=-1, out=out[..., 1:])
    return out


class RateModel:
    """Cumulative sums of a Series for window and baseline sums at any (row, bucket)."""

    def __init__(self, s: Series, cfg: DetectSettings, first_t: int, excluded: np.ndarray | None = None):
        self.s, self.cfg, self.first_t = s, cfg, first_t
        n_rows = s.n[s.den] if len(s.den) else np.zeros((0, s.T))
        self.cx, self.cn = _cum(s.x), _cum(n_rows)
        if excluded is None:
            self.bx, self.bn = self.cx, self.cn
        else:
            keep = ~excluded
            self.bx, self.bn = _cum(s.x * keep), _cum(n_rows * keep)
        self.base_b = int(round(cfg.baseline_hours * BUCKETS_PER_HOUR))
        self.gap_b = cfg.baseline_gap_minutes // 5
        self.cv = _rate_cv(s.x, n_rows, None if excluded is None else ~excluded, cfg)

    def _offsets(self, wb: int) -> tuple[int, int]:
        """How far back from a window's end its start, and its baseline's end, lie."""
        return wb, max(self.gap_b, wb)

    def window_all(self, wb: int):
        """window() for every (row, bucket) as (rows, T) arrays. The cumulative sums are
        constant before the first bucket, so each sum is a difference of two column
        slices (shifted views), not a gather."""
        T = self.s.T
        back, gap = self._offsets(wb)

        def shifted(a, d):  # column t + 1 - d of a, for t in 0..T-1 (column 0 before the start)
            if d <= 0:
                return a[:, 1 - d:T + 1 - d]
            if d >= T + 1:
                return np.zeros((a.shape[0], T))
            return np.concatenate((np.repeat(a[:, :1], d - 1, axis=1), a[:, :T + 1 - d]), axis=1)

        x = self.cx[:, 1:] - shifted(self.cx, back)
        n = self.cn[:, 1:] - shifted(self.cn, back)
        bx = shifted(self.bx, gap) - shifted(self.bx, gap + self.base_b)
        bn = shifted(self.bn, gap) - shifted(self.bn, gap + self.base_b)
        b0 = np.arange(T) + 1 - gap - self.base_b
        ok = (b0 >= max(self.first_t, 0))[None, :] & (bn >= self.cfg.min_baseline_attempts)
        return x, n, (bx + 0.5) / (bn + 1.0), ok, bn

    def window(self, rows, t, wb: int):
        """(x, n, baseline rate, baseline usable, baseline attempts) of the wb-bucket
        windows ending at buckets t[i] of rows[i]."""
        back, gap = self._offsets(wb)
        hi = t + 1
        lo = np.maximum(hi - back, 0)
        x = self.cx[rows, hi] - self.cx[rows, lo]
        n = self.cn[rows, hi] - self.cn[rows, lo]
        e = hi - gap
        b0 = e - self.base_b
        e_c, b0_c = np.clip(e, 0, self.s.T), np.clip(b0, 0, self.s.T)
        bx = self.bx[rows, e_c] - self.bx[rows, b0_c]
        bn = self.bn[rows, e_c] - self.bn[rows, b0_c]
        ok = (b0 >= self.first_t) & (b0 >= 0) & (bn >= self.cfg.min_baseline_attempts)
        p = (bx + 0.5) / (bn + 1.0)
        return x, n, p, ok, bn


def _rate_cv(x: np.ndarray, n: np.ndarray, keep: np.ndarray | None, cfg: DetectSettings) -> np.ndarray:
    """Per series, how much its rate varies between 5-minute buckets beyond chance, as
    a coefficient of variation (method of moments: Pearson dispersion phi of the
    buckets against the series' own rate p, intra-class correlation
    rho = (phi - 1) / (n_eff - 1), cv^2 = rho (1 - p) / p), never below ``rate_cv``. Each
    bucket's term is capped at DISPERSION_CAP (4 standard deviations squared), so the
    incidents in the history do not make the test blind to the next one. Codes
    that customers retry into (1001 after 1001) or that one failing endpoint repeats
    get a wider test than independent failures."""
    if keep is not None:
        x, n = x * keep, n * keep
    sx, sn = x.sum(1), n.sum(1)
    p = np.where(sn > 0, sx / np.maximum(sn, 1), 0.0)
    var = n * (p * (1 - p))[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):  # capped: past incidents must not widen the test
        terms = np.minimum(np.where(var > 0, (x - n * p[:, None]) ** 2 / var, 0.0), DISPERSION_CAP)
    buckets = (var > 0).sum(1)
    phi = np.where(buckets > 0, terms.sum(1) / np.maximum(buckets, 1), 1.0)
    n_eff = np.where(sn > 0, (n * n).sum(1) / np.maximum(sn, 1), 1.0)
    rho = np.where(n_eff > 1, (phi - 1) / np.maximum(n_eff - 1, 1e-9), 0.0)
    cv = np.sqrt(np.clip(rho, 0, None) * (1 - p) / np.maximum(p, 1e-9))
    return np.clip(cv, cfg.rate_cv, 3.0)


def _guarded(cfg: DetectSettings, x, n, p, ok):
    with np.errstate(divide="ignore", invalid="ignore"):
        obs = np.where(n > 0, x / np.maximum(n, 1), 0.0)
    return ok & (x >= cfg.min_failures) & (obs >= cfg.min_ratio * p) & (obs - p >= cfg.min_abs_rise), obs


def rate_scores(model: RateModel, eligible: np.ndarray, warn_score: np.ndarray):
    """Best window per (row, bucket): score, window minutes, x, n, observed, baseline,
    and how many windows score at least the row's ``warn_score`` ("agreeing"); score 0
    where no window passes the guards. ``eligible`` is (rows, T) bool."""
    s, cfg = model.s, model.cfg
    P, T = s.x.shape
    best = {k: np.zeros((P, T)) for k in ("score", "window", "x", "n", "obs", "p", "agreeing")}
    for minutes in cfg.windows_minutes:
        x, n, p, ok, bn = model.window_all(minutes // 5)
        passed, obs = _guarded(cfg, x, n, p, ok & eligible)
        r, t = np.nonzero(passed)
        if not r.size:
            continue
        score = tail_score(x[r, t], n[r, t], p[r, t], model.cv[r], bn[r, t])
        best["agreeing"][r, t] += score >= warn_score[r]
        better = score > best["score"][r, t]
        r, t, score = r[better], t[better], score[better]
        best["score"][r, t] = score
        best["window"][r, t] = minutes
        for name, values in (("x", x), ("n", n), ("obs", obs), ("p", p)):
            best[name][r, t] = values[r, t]
    return best


def levels(cfg: DetectSettings, tests: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Warning and critical score levels per series, with ``warn_p`` and ``crit_p``
    shared out (Bonferroni) over the ``tests`` series a code is tested on (all
    shortcodes and each busy one): a code is no likelier to alarm for having more
    shortcodes."""
    tests = np.asarray(tests, dtype=np.float64)
    return -np.log10(cfg.warn_p / tests), -np.log10(cfg.crit_p / tests)


def severity_of(score: np.ndarray, warn: np.ndarray, crit: np.ndarray) -> np.ndarray:
    """Warning or critical per (series, bucket), by the series' levels."""
    return np.where(score >= crit[:, None], CRITICAL, np.where(score >= warn[:, None], WARNING, 0))


def rate_flags(s: Series, cfg: DetectSettings, *, first_t: int, from_t: int, pending_until_t: int):
    """Flags of the rate and pending detectors for buckets >= from_t, the model (pass
    two: baselines without the buckets pass one found anomalous), and the (rows, T)
    mask of the buckets found anomalous (spikes).

    Every bucket read is scored, not only those from ``from_t``: the baselines and the
    slow burn leave out the spikes of the whole history, so a run after a load
    (``since``) agrees with a full backfill."""
    eligible = np.ones(s.x.shape, dtype=bool)
    pending_rows = [i for i, c in enumerate(s.codes) if c == PENDING_CODE and s.sources[i] == TXN]
    if pending_rows:
        eligible[pending_rows, max(pending_until_t, 0):] = False
    per_code = {c: s.codes.count(c) for c in set(s.codes)}
    tests = np.array([per_code[c] for c in s.codes])
    warn, crit = levels(cfg, tests)
    model = RateModel(s, cfg, first_t)
    best = rate_scores(model, eligible, warn)
    excluded = severity_of(best["score"], warn, crit) > 0
    if excluded.any():
        model = RateModel(s, cfg, first_t, excluded)
        best = rate_scores(model, eligible, warn)
    sev = severity_of(best["score"], warn, crit)
    routed = sev.copy()
    routed[:, :max(from_t - 12, 0)] = 0  # a little before from_t, so episodes crossing it start right
    return _route(s, cfg, model, best, routed), model, sev > 0


def _route(s: Series, cfg: DetectSettings, model: RateModel, best: dict, sev: np.ndarray) -> list[Flags]:
    """One key per run of anomalous buckets and code. A run of the all-shortcode series
    goes to the shortcode holding ``concentration`` of its excess failures (summed over
    the run), else stays on all shortcodes; a shortcode's own anomaly outside such runs
    keeps its own key. Deciding per run, not per bucket, keeps one incident on one key."""
    out: dict[tuple, list] = {}
    quiet = max(cfg.quiet_minutes // 5, 1)

    def add(detector, code, row, t, severity, score, stats):
        out.setdefault((detector, code, s.shortcodes[row], row), []).append((t, severity, score) + tuple(stats))

    def stats_at(row, t):
        return [best[k][row, t] for k in ("window", "x", "n", "obs", "p", "agreeing")]

    for code in sorted(set(s.codes)):
        rows = s.rows(code)
        agg = [r for r in rows if s.shortcodes[r] == ALL]
        per_sc = np.asarray([r for r in rows if s.shortcodes[r] != ALL], dtype=np.int64)
        detector = "pending" if code == PENDING_CODE and s.sources[rows[0]] == TXN else "rate"
        covered = np.zeros(s.T, dtype=bool)
        if agg:
            a = agg[0]
            ts = np.nonzero(sev[a] > 0)[0]
            runs = np.split(ts, np.nonzero(np.diff(ts) > quiet)[0] + 1) if ts.size else []
            for run in runs:
                covered[run[0]:min(run[-1] + quiet + 1, s.T)] = True
                target = a
                if per_sc.size:
                    excess = np.zeros(per_sc.size)
                    for t in run:
                        x, n, p, _ok, _bn = model.window(per_sc, np.full(per_sc.size, t), int(best["window"][a, t]) // 5)
                        excess += x - n * p
                    pos = np.clip(excess, 0, None)
                    top = int(np.argmax(excess))
                    if pos.sum() > 0 and pos[top] / pos.sum() >= cfg.concentration:
                        target = int(per_sc[top])
                for t in run:
                    if target == a:
                        add(detector, code, a, t, sev[a, t], best["score"][a, t], stats_at(a, t))
                        continue
                    wb = int(best["window"][a, t]) // 5
                    x, n, p, _ok, bn = model.window(np.array([target]), np.array([t]), wb)
                    own = float(tail_score(x, n, p, model.cv[target], bn)[0])
                    obs = float(x[0] / n[0]) if n[0] else 0.0
                    add(detector, code, target, t, sev[a, t], max(float(best["score"][a, t]), own),
                        [wb * 5, x[0], n[0], obs, p[0], best["agreeing"][a, t]])
        for r in per_sc.tolist():
            for t in np.nonzero((sev[r] > 0) & ~covered)[0]:
                add(detector, code, r, t, sev[r, t], best["score"][r, t], stats_at(r, t))
    return [_flags(key, items) for key, items in sorted(out.items(), key=lambda kv: kv[0][:3])]


def _flags(key: tuple, items: list) -> Flags:
    detector, code, shortcode, row = key
    items.sort(key=lambda it: it[0])
    cols = list(zip(*items))
    arr = [np.asarray(c, dtype=np.float64) for c in cols]
    return Flags(detector, code, shortcode, row, arr[0].astype(np.int64), arr[1].astype(np.int64), arr[2],
                 arr[3].astype(np.int64), arr[4], arr[5], arr[6], arr[7], arr[8].astype(np.int64))


def slow_burn_flags(s: Series, cfg: DetectSettings, *, first_t: int, from_t: int,
                    spikes: np.ndarray | None = None) -> list[Flags]:
    """One-sided CUSUM per code (all shortcodes, transactions) on hourly counts.

    Buckets the rate detector found anomalous for the code (``spikes``, any of its
    series) are left out of the hourly counts: a spike already has its alert, and
    without this a long one also pushed the CUSUM over its level, a second alert for
    the same incident that outlived it by hours.

    Hour h is compared with the rate of the ``slow_reference_days`` ending
    ``slow_reference_lag_hours`` before it; z is standardised with the same
    rate variation (``rate_cv``) as the rate test; S_h = max(0, S_{h-1} + z_h - k), computed as
    C_h - min(0, min C) with C the cumulative sum, so without a Python loop. An hour
    is anomalous while S_h > h and the last 6 hours run ``slow_min_ratio`` above the
    reference; its flag covers the hour's 12 buckets."""
    pad = s.t0 % BUCKETS_PER_HOUR  # empty buckets put before the first, so hours start on the clock
    T = s.T + pad
    H = -(-T // BUCKETS_PER_HOUR)
    lag, ref = cfg.slow_reference_lag_hours, cfg.slow_reference_days * 24
    out = []
    for r in (i for i in range(len(s.codes)) if s.shortcodes[i] == ALL and s.sources[i] == TXN
              and s.codes[i] != PENDING_CODE):
        x = np.zeros(H * BUCKETS_PER_HOUR)
        n = np.zeros(H * BUCKETS_PER_HOUR)
        same = [i for i in s.rows(s.codes[r]) if s.sources[i] == TXN]
        keep = 1.0 if spikes is None else ~spikes[same].any(axis=0)
        x[pad:pad + s.T], n[pad:pad + s.T] = s.x[r] * keep, s.n[s.den[r]] * keep
        xh, nh = x.reshape(H, -1).sum(1), n.reshape(H, -1).sum(1)
        cx, cn = _cum(xh), _cum(nh)
        h = np.arange(H)
        e, b0 = np.clip(h - lag, 0, H), np.clip(h - lag - ref, 0, H)
        rx, rn = cx[e] - cx[b0], cn[e] - cn[b0]
        first_h = (first_t + pad) // BUCKETS_PER_HOUR
        ok = (h - lag - 24 >= first_h) & (rn >= cfg.min_baseline_attempts)
        p0 = np.where(rn > 0, (rx + 0.5) / (rn + 1.0), 0.0)
        if not (ok & (p0 >= cfg.slow_min_baseline)).any():
            continue
        rho = cfg.rate_cv ** 2 * p0 / np.maximum(1 - p0, 1e-9)
        sd = np.sqrt(np.maximum(nh * p0 * (1 - p0) * (1 + np.maximum(nh - 1, 0) * rho), 1e-12))
        z = np.where(ok & (nh > 0), (xh - nh * p0) / sd, 0.0)
        c = np.cumsum(z - cfg.slow_k)
        cusum = c - np.minimum(np.minimum.accumulate(c), 0.0)
        lo6 = np.clip(h + 1 - 6, 0, H)
        x6, n6 = cx[h + 1] - cx[lo6], cn[h + 1] - cn[lo6]
        rate6 = np.where(n6 > 0, x6 / np.maximum(n6, 1), 0.0)
        flag = ok & (p0 >= cfg.slow_min_baseline) & (cusum > cfg.slow_h) & (rate6 >= cfg.slow_min_ratio * p0) \
            & (x6 >= cfg.min_failures)
        hours = np.nonzero(flag)[0]
        if not hours.size:
            continue
        t = (hours[:, None] * BUCKETS_PER_HOUR + np.arange(BUCKETS_PER_HOUR)[None, :]).ravel() - pad
        rep = np.repeat(np.arange(hours.size), BUCKETS_PER_HOUR)
        keep = (t >= max(from_t - 12, 0)) & (t < s.T)
        t, rep = t[keep], rep[keep]
        if not t.size:
            continue
        hh = hours[rep]
        out.append(Flags("slow_burn", s.codes[r], ALL, r, t, np.full(t.size, WARNING), cusum[hh],
                         np.full(t.size, 360), x6[hh], n6[hh], rate6[hh], p0[hh], np.ones(t.size, dtype=np.int64)))
    return out


def volume_flags(s: Series, cfg: DetectSettings, *, from_t: int, complete_until_t: int) -> list[Flags]:
    """Attempts (all shortcodes) in the last ``volume_window_minutes`` against the
    expected count: the lower of the median of the same window on the 7 days before
    and the same window a week before (so it needs a week of history). For these alerts ``attempts`` is what came,
    ``failures`` the shortfall, ``observed_rate`` observed/expected and
    ``baseline_rate`` 1."""
    if (TXN, ALL) not in s.n_keys:
        return []
    row = s.n_row(TXN, ALL)
    wb = max(cfg.volume_window_minutes // 5, 1)
    cn = _cum(s.n[row])
    t = np.arange(s.T)
    obs = cn[t + 1] - cn[np.maximum(t + 1 - wb, 0)]
    refs = np.full((7, s.T), np.nan)
    for k in range(1, 8):
        lag = k * BUCKETS_PER_DAY
        if lag < s.T:
            refs[k - 1, lag:] = obs[:-lag]
    # A week of history first: without the same weekday a week before, a quiet Sunday
    # morning would be judged against weekday mornings and look like an outage.
    have = np.isfinite(refs[6])
    with np.errstate(all="ignore"):
        median = np.nanmedian(np.where(have, refs, 0.0), axis=0)
    expected = np.where(have, np.minimum(median, refs[6]), 0.0)
    ratio = np.where(expected > 0, obs / np.maximum(expected, 1e-9), 1.0)
    flag = (expected >= cfg.volume_min_expected) & (ratio <= cfg.volume_warn_ratio) & (t >= max(from_t - 12, 0)) \
        & (t < complete_until_t)
    ts = np.nonzero(flag)[0]
    if not ts.size:
        return []
    sev = np.where(ratio[ts] <= cfg.volume_crit_ratio, CRITICAL, WARNING)
    return [Flags("volume", VOLUME_CODE, ALL, row, ts, sev, 1.0 - ratio[ts], np.full(ts.size, wb * 5),
                  np.rint(expected[ts] - obs[ts]), obs[ts], ratio[ts], np.ones(ts.size),
                  np.ones(ts.size, dtype=np.int64))]
