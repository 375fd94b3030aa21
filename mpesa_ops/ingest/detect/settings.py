"""Every parameter of detection, with its default and what it does.

Each can be overridden in secrets.toml under ``[detect]`` (same names), e.g.::

    [detect]
    warn_p = 1e-7
    min_failures = 5

How the defaults were calibrated: ``bench/detect.py`` replays 28+ days of simulated
traffic without incidents (diurnal, weekly and payday shape, 2,000 and 50,000 payments
a day) and counts alert episodes that fire; ``rate_cv``, ``warn_p`` and ``crit_p`` were
set so that every code stays under the false-alarm budget
(0.1 firing episodes a day per code), then the same bench with injected incidents
checked that all day-time incidents and >= 80 % of night ones are still found.
``confirm_windows`` was measured the same way: on incident-free replays (seeds 11, 12)
it adds no firing episode, and it fires day-time incidents a bucket sooner.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from mpesa_ops.config import ConfigError, section

BUCKET_SECONDS = 300  # the unit: 5-minute buckets (Nairobi is UTC+3, so the boundaries are the same)


@dataclass(frozen=True)
class DetectSettings:
    # --- rate detector (per code, per shortcode and all shortcodes together) ---
    windows_minutes: tuple[int, ...] = (5, 15, 60)  # windows tested at every bucket (multiples of 5)
    baseline_hours: float = 24.0  # trailing span the baseline rate is taken from
    baseline_gap_minutes: int = 30  # most recent span left out of the baseline (or the window, if longer)
    min_baseline_attempts: int = 200  # fewer attempts in the baseline span: no test
    rate_cv: float = 0.2  # how much a code's rate varies between windows beyond chance (0.2 = 20 %), at least
    warn_p: float = 3e-4  # tail probability below which a window is anomalous (warning), shared over a code's series
    crit_p: float = 3e-5  # ... and critical (fires at once, without a second bucket)
    min_failures: int = 3  # guard: fewer failures of the code in the window never alert
    min_ratio: float = 1.5  # guard: observed rate at least this many times the baseline
    min_abs_rise: float = 0.005  # guard: observed rate at least this much above the baseline (0.005 = 0.5 points)
    concentration: float = 0.7  # share of the excess one shortcode must hold for an all-shortcode anomaly to be its alert
    max_shortcodes: int = 50  # shortcodes tested on their own (the busiest); the rest only in the total
    # --- lifecycle ---
    confirm_buckets: int = 2  # anomalous buckets before a warning goes from pending to firing
    confirm_windows: int = 2  # ... or, in one bucket, anomalous windows (of windows_minutes) that fire it at once; 0: off
    quiet_minutes: int = 15  # an alert resolves after this long without an anomalous bucket
    # --- slow burn (one-sided CUSUM on hourly rates, all shortcodes together) ---
    slow_reference_days: int = 7  # the reference rate: these days, ending slow_reference_lag_hours ago
    slow_reference_lag_hours: int = 24  # so a rise over a few days is not absorbed into its own reference
    slow_min_baseline: float = 0.01  # only codes at least this common (gradual rises of rare codes are spikes)
    slow_k: float = 0.5  # CUSUM allowance per hour, in standard deviations
    slow_h: float = 12.0  # CUSUM decision level: alert while the sum is above it
    slow_min_ratio: float = 1.2  # guard: the last 6 hours at least this many times the reference rate
    # --- volume drop (all attempts) ---
    volume_window_minutes: int = 30  # window compared with the same time on earlier days
    volume_min_expected: float = 40.0  # expected attempts in the window below which silence is normal
    volume_warn_ratio: float = 0.3  # observed / expected at or below this: warning
    volume_crit_ratio: float = 0.1  # ... critical
    # --- payments left pending ---
    pending_after_minutes: int = 10  # a payment still pending this long after its request counts as stuck
    # --- notifications queued by detection ---
    notify_max_age_minutes: int = 60  # fired/resolved events older than this (a backfill) are not sent


DEFAULTS = DetectSettings()


def load_settings(overrides: dict | None = None) -> DetectSettings:
    """The defaults, overridden by secrets.toml ``[detect]`` (or by ``overrides``).
    An unknown name or a value of the wrong type is a ConfigError naming it."""
    table = section("detect") if overrides is None else overrides
    known = {f.name: f for f in fields(DetectSettings)}
    values = {}
    for name, value in table.items():
        if name not in known:
            raise ConfigError(f"[detect] {name}: not a detection setting (known: {', '.join(sorted(known))})")
        default = getattr(DEFAULTS, name)
        try:
            if isinstance(default, tuple):
                value = tuple(int(v) for v in value)
                if not value or any(v <= 0 or v % 5 for v in value):
                    raise ValueError
            elif isinstance(default, bool) or isinstance(value, bool):
                raise ValueError
            else:
                value = type(default)(value)
                if value < 0:
                    raise ValueError
        except (TypeError, ValueError):
            raise ConfigError(f"[detect] {name}: {value!r} is not a valid value (default {default!r})") from None
        values[name] = value
    return DetectSettings(**values)
