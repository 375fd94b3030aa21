"""Anomalous buckets of one key grouped into alert episodes, with their lifecycle.

Buckets less than ``quiet_minutes`` apart belong to one episode. An episode is
``pending`` from its first anomalous bucket, ``firing`` once a second bucket confirms it
(``confirm_buckets``), or at once when a bucket is critical or anomalous in
``confirm_windows`` of its windows (a 5-minute spike that the 15- or 60-minute
window also finds anomalous), and ``resolved`` when
``quiet_minutes`` have passed (by ``now``) without an anomalous bucket. An episode that
went quiet without ever firing is dropped: it was noise the confirmation filtered out.

Times: ``started_at`` is the start of the first anomalous bucket, ``last_seen_at`` the
start of the last one, ``ended_at`` (resolved only) the end of the last one, and
``fired_at`` (in details) the end of the bucket that confirmed it: when the data to
know it was complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from mpesa_ops.ingest.detect.detectors import CRITICAL, SEVERITY_NAMES, Flags
from mpesa_ops.ingest.detect.series import time_of
from mpesa_ops.ingest.detect.settings import DetectSettings


@dataclass
class Episode:
    flags: Flags
    first: int  # index into flags arrays
    last: int
    peak: int
    fired: int | None  # index of the confirming bucket
    status: str
    t0: int  # the series' first bucket number

    @property
    def key(self) -> str:
        return self.flags.key

    def bucket_time(self, i: int, end: bool = False) -> datetime:
        return time_of(self.t0 + int(self.flags.t[i]) + (1 if end else 0))

    @property
    def started_at(self) -> datetime:
        return self.bucket_time(self.first)

    @property
    def last_seen_at(self) -> datetime:
        return self.bucket_time(self.last)

    @property
    def ended_at(self) -> datetime | None:
        return self.bucket_time(self.last, end=True) if self.status == "resolved" else None

    @property
    def fired_at(self) -> datetime | None:
        return None if self.fired is None else self.bucket_time(self.fired, end=True)

    @property
    def severity(self) -> str:
        return SEVERITY_NAMES[int(self.flags.severity[self.first:self.last + 1].max())]


def episodes_of(flags: Flags, cfg: DetectSettings, *, t0: int, now_t: int) -> list[Episode]:
    """Episodes of one key; ``now_t`` is the bucket offset holding ``now``."""
    t = flags.t
    if not t.size:
        return []
    quiet = max(cfg.quiet_minutes // 5, 1)
    breaks = np.nonzero(np.diff(t) > quiet)[0]
    starts = np.concatenate(([0], breaks + 1))
    ends = np.concatenate((breaks, [t.size - 1]))
    out = []
    for a, b in zip(starts.tolist(), ends.tolist()):
        at_once = flags.severity[a:b + 1] >= CRITICAL
        if cfg.confirm_windows:
            at_once |= flags.agreeing[a:b + 1] >= cfg.confirm_windows
        at_once = np.nonzero(at_once)[0]
        confirm = a + cfg.confirm_buckets - 1
        candidates = [a + int(at_once[0])] if at_once.size else []
        if confirm <= b:
            candidates.append(confirm)
        fired = min(candidates) if candidates else None
        quiet_now = now_t - int(t[b]) > quiet
        if quiet_now and fired is None:
            continue
        status = "resolved" if quiet_now else ("firing" if fired is not None else "pending")
        peak = a + int(np.argmax(flags.score[a:b + 1]))
        out.append(Episode(flags, a, b, peak, fired, status, t0))
    return out
