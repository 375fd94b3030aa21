"""What an alert's stored numbers mean, per detector, for the CLI and the dashboard.

The detectors store one set of columns (failures, attempts, observed_rate,
baseline_rate, window_minutes), measured over the alert's *counted window*: the
window that ends with its peak bucket.

- ``rate``: failures of the code among the payments (or first deliveries) requested
  in the ``window_minutes`` ending with the peak 5-minute bucket, against the
  baseline rate.
- ``pending``: the same, with "failures" the payments still pending
  ``pending_after_minutes`` after their request.
- ``slow_burn``: the 6 hours ending with the peak hour, against the rate of the week
  before.
- ``volume``: ``attempts`` is the payments that came in the 30 minutes ending with the
  peak bucket, ``failures`` the shortfall from the expected count, ``observed_rate``
  observed / expected and ``baseline_rate`` 1 (normal).
"""

from __future__ import annotations

from datetime import datetime, timedelta

BUCKET = timedelta(minutes=5)
HOUR = timedelta(hours=1)


def _time(value) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def counted_window(alert: dict) -> tuple[datetime, datetime]:
    """[start, end) of the payments the alert's counts cover (aware times)."""
    peak = _time((alert.get("details") or {}).get("peak_at")) or _time(alert["started_at"])
    span = timedelta(minutes=alert["window_minutes"] or 5)
    if alert["detector"] == "slow_burn":  # the peak is the first bucket of the detector's peak hour
        end = peak + HOUR
    else:
        end = peak + BUCKET
    return end - span, end


def figures(alert: dict) -> dict:
    """The alert's numbers as they read: ``observed`` (failures, or payments that came
    for volume) and ``expected`` (what the baseline predicts for the same window), the
    rates (for volume: observed / expected and 1), and the counted window."""
    start, end = counted_window(alert)
    out = {"failures": alert["failures"], "attempts": alert["attempts"], "observed_rate": alert["observed_rate"],
           "baseline_rate": alert["baseline_rate"], "counted_from": start, "counted_to": end}
    if alert["detector"] == "volume":
        expected = alert["attempts"] + alert["failures"]  # failures holds the shortfall
        out.update(failures=None, observed=alert["attempts"], expected=expected, baseline_rate=1.0)
    else:
        base = alert["baseline_rate"]
        out.update(observed=alert["failures"],
                   expected=None if base is None else round(alert["attempts"] * base, 1))
    return out
