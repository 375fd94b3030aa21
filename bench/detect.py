"""Detection benchmark: simulated months with injected incidents, detection beside a
Grafana-style static threshold on the same data, and the time of a 90-day backfill.

Traffic is synthesised straight into the minute rollups (what detection reads), with
the simulator's shape: its hourly profiles for weekdays, Saturdays and Sundays, its
day-of-week factors and month-end payday factor, its four shortcodes and their shares,
its outcome mix (plus gateway refusals and payments left pending) and a webhook
delivery mix. Counts are Poisson per minute and shortcode, then multinomial over
outcomes, with each code's rate jittered per hour (lognormal, sigma 0.1) so failures
cluster a little as real ones do. Injected (ground truth):

- 1037 surges at 2.5-5x its rate on all shortcodes, 15-60 minutes, by day (09-20 h)
  and by night (00-05 h);
- 9999 outages at 3-15 % of pushes on all shortcodes, 15-60 minutes, by day and night;
- beside them, 1037 surges at 2.5-5x on one shortcode (chosen uniformly, so a small
  one as often as a large one), reported on their own lines: the issue's targets are
  for the incidents above;
- code 1 rising from 6 % to 15 % over the 3-5 days before each 25th (slow burn).

An incident sets its code's share exactly (4x is four times the code's rate, as in the
simulator); the other outcomes share the rest in proportion.

Figures: false-alarm episodes (alerts that fire outside any incident) per day per
code over incident-free days, incidents found by day and by night, the same of the
incidents the data can show at all (``evidence``: what an oracle that knows the
incident's scope and span would see, against detection's warning level), median delay
from the incident's start to the alert firing, and the time of `detect()` over 90 days at
50,000 payments a day. The static rule alerts when a code's 5-minute rate over all
shortcodes exceeds 3x its long-run rate (at least 1 point), for two buckets in a row.

    python bench/detect.py [--days 60] [--per-day 2000 50000] [--replays 4] [--backfill-days 90] [--pg URL]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from scipy.stats import binom

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mpesa_ops.ingest import simulate as sim  # noqa: E402
from mpesa_ops.ingest.db import open_store  # noqa: E402
from mpesa_ops.ingest.detect.alerts import list_alerts  # noqa: E402
from mpesa_ops.ingest.detect.detectors import levels  # noqa: E402
from mpesa_ops.ingest.detect.run import detect  # noqa: E402
from mpesa_ops.ingest.detect.settings import DEFAULTS  # noqa: E402

START = date(2026, 1, 1)
NAIROBI = timezone(timedelta(hours=3))
SHORTCODES = [s[0] for s in sim._SHORTCODES]
SHARES = np.array([s[1] for s in sim._SHORTCODES])
REJECT_CODES = [r[0] for r in sim._REJECTS]
REJECT_W = np.array([r[3] for r in sim._REJECTS], dtype=float)
DELIVERY = {"delivered": 0.97, "timeout": 0.012, "http_error": 0.0126, "connection_error": 0.0042,
            "tls_error": 0.0012}


def outcome_mix() -> tuple[list[str], list[str], np.ndarray]:
    """(status, outcome) columns and base probabilities of one payment."""
    statuses, outcomes, p = [], [], []
    keep = 1 - sim._REJECT_RATE - sim._FOREVER_PENDING_RATE
    for code, share in sim._OUTCOMES:
        statuses.append("success" if code == 0 else "failed")
        outcomes.append(str(code))
        p.append(share / 100 * keep)
    for code, w in zip(REJECT_CODES, REJECT_W / REJECT_W.sum()):
        statuses.append("rejected"), outcomes.append(code), p.append(w * sim._REJECT_RATE)
    statuses.append("pending"), outcomes.append("pending"), p.append(sim._FOREVER_PENDING_RATE)
    p = np.array(p)
    return statuses, outcomes, p / p.sum()


def minute_volume(days: int, per_day: int) -> np.ndarray:
    """Expected payments per minute: the simulator's daily, weekly and payday shape."""
    shapes = {k: np.array(sim._minute_shares(h)) for k, h in
              (("weekday", sim._HOURLY_WEEKDAY), ("saturday", sim._HOURLY_SATURDAY), ("sunday", sim._HOURLY_SUNDAY))}
    out = []
    for d in range(days):
        day = START + timedelta(days=d)
        dow = day.weekday()
        kind = "sunday" if dow == 6 or (day.month, day.day) in sim._HOLIDAYS else ("saturday" if dow == 5 else "weekday")
        out.append(shapes[kind] * sim._DOW_FACTOR[dow] * sim._payday_factor(day))
    lam = np.concatenate(out)
    return lam * per_day * days / lam.sum()


def plan_incidents(days: int, rng: np.random.Generator) -> list[dict]:
    """Two 1037 surges on all shortcodes, two on one shortcode and two 9999 outages a
    week (half at night), plus the slow rises."""
    incidents = []
    for d in range(2, days):  # day 0-1: the baseline builds
        for kind in ("surge", "outage", "local_surge"):
            if rng.random() >= 2 / 7:
                continue
            night = rng.random() < 0.5
            dur = int(rng.integers(15, 61))
            start_min = int(rng.integers(0, 5 * 60 - dur)) if night else int(rng.integers(9 * 60, 20 * 60 - dur))
            s = d * 1440 + start_min
            if kind == "surge":
                incidents.append({"code": "1037", "shortcode": "", "sc": None, "start": s, "end": s + dur,
                                  "mult": float(rng.uniform(2.5, 5.0)), "night": night})
            elif kind == "local_surge":
                sc = int(rng.integers(0, len(SHORTCODES)))
                incidents.append({"code": "1037", "shortcode": SHORTCODES[sc], "sc": sc, "start": s, "end": s + dur,
                                  "mult": float(rng.uniform(2.5, 5.0)), "night": night})
            else:
                incidents.append({"code": "9999", "shortcode": "", "sc": None, "start": s, "end": s + dur,
                                  "rate": float(rng.uniform(0.03, 0.15)), "night": night})
    for d in range(days):
        if (START + timedelta(days=d)).day == 25:
            n = int(rng.integers(3, 6))
            if d - n >= 8:
                incidents.append({"code": "1", "shortcode": "", "sc": None, "start": (d - n) * 1440,
                                  "end": d * 1440, "slow": True, "night": False})
    return [i for i in incidents if not any(j is not i and j["code"] == i["code"] and j["start"] < i["end"] + 120
                                            and i["start"] < j["end"] + 120 for j in incidents[:incidents.index(i)])]


def synthesise(days: int, per_day: int, seed: int, with_incidents: bool):
    """Rollup rows (txn, delivery) and the incidents injected into them."""
    rng = np.random.default_rng(seed)
    statuses, outcomes, p = outcome_mix()
    idx = {o: i for i, o in enumerate(outcomes)}
    lam = minute_volume(days, per_day)
    M = lam.size
    incidents = plan_incidents(days, rng) if with_incidents else []
    n = rng.poisson(lam[:, None] * SHARES[None, :])  # (M, S)
    jitter = np.exp(rng.normal(0, 0.1, size=(M // 60 + 1, p.size)))[np.arange(M) // 60]  # hourly clustering
    probs = p[None, :] * jitter
    probs = np.repeat(probs[:, None, :], len(SHORTCODES), axis=1)  # (M, S, K)
    probs /= probs.sum(-1, keepdims=True)
    for inc in sorted(incidents, key=lambda i: not i.get("slow")):  # slow rises first: a spike's share is exact
        code = idx[inc["code"]]
        cells = probs[inc["start"]:inc["end"], slice(None) if inc["sc"] is None else inc["sc"]]  # a view
        if inc.get("slow"):
            target = np.linspace(0.06, 0.15, inc["end"] - inc["start"])[:, None]
        elif inc["code"] == "1037":
            target = inc["mult"] * cells[..., code]
        else:
            target = np.full(cells.shape[:-1], inc["rate"])
        # the code takes exactly its target share; the other outcomes share the rest in proportion
        cells *= ((1 - target) / (1 - cells[..., code]))[..., None]
        cells[..., code] = target
    counts = rng.multinomial(n, probs)  # (M, S, K)
    for inc in incidents:
        inc["evidence"] = evidence(counts, idx[inc["code"]], inc)
    m, s, k = np.nonzero(counts)
    t0 = datetime(START.year, START.month, START.day, tzinfo=NAIROBI).astimezone(timezone.utc).replace(tzinfo=None)
    minutes = [(t0 + timedelta(minutes=int(v))).strftime("%Y-%m-%d %H:%M:%S.000000") for v in range(M)]
    txn = [(minutes[a], SHORTCODES[b], statuses[c], outcomes[c], int(v), int(v) * 50_000)
           for a, b, c, v in zip(m.tolist(), s.tolist(), k.tolist(), counts[m, s, k].tolist())]
    dn = rng.poisson(n.sum(1) * 1.05)
    dp = np.array(list(DELIVERY.values()))
    dcounts = rng.multinomial(dn, dp / dp.sum())
    m, k = np.nonzero(dcounts)
    names = list(DELIVERY)
    dlv = [(minutes[a], "https://shop.example.co.ke/hook", names[c], int(v), 0, 150.0 * v)
           for a, c, v in zip(m.tolist(), k.tolist(), dcounts[m, k].tolist())]
    return txn, dlv, incidents


def evidence(counts: np.ndarray, code: int, inc: dict) -> dict:
    """What the data holds of an incident, as an oracle that knows its scope and span
    would test it: the code's failures and all attempts inside the incident, against
    the code's rate on that scope over the 24 hours before it (the last 30 minutes
    left out, as detection does). ``score`` is -log10 of the plain binomial tail, the
    most generous test there is (no rate variation, no search over windows)."""
    scope = slice(None) if inc["sc"] is None else inc["sc"]
    inside = counts[inc["start"]:inc["end"], scope].reshape(-1, counts.shape[-1])
    before = counts[max(inc["start"] - 1440 - 30, 0):max(inc["start"] - 30, 0), scope].reshape(-1, counts.shape[-1])
    x, n = int(inside[:, code].sum()), int(inside.sum())
    p = (before[:, code].sum() + 0.5) / (before.sum() + 1.0)
    return {"x": x, "n": n, "p": float(p), "score": float(-np.log10(max(binom.sf(x - 1, n, p), 1e-300)))}


def ceiling_level(code: str) -> float:
    """The warning level detection applies to one series of ``code`` in the bench's
    data (warn_p shared over the all-shortcode series and each shortcode's)."""
    warn, _crit = levels(DEFAULTS, np.array([1 + len(SHORTCODES)]))
    return float(warn[0])


def load(url: str, txn: list, dlv: list):
    engine = open_store(url)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        mark = "?" if engine.dialect.name == "sqlite" else "%s"
        cur.executemany(f"INSERT INTO txn_rollup_minute (bucket, shortcode, status, outcome, attempts, amount_cents) "
                        f"VALUES ({', '.join([mark] * 6)})", txn)
        cur.executemany(f"INSERT INTO delivery_rollup_minute (bucket, url, outcome, deliveries, retries, latency_ms_sum) "
                        f"VALUES ({', '.join([mark] * 6)})", dlv)
        raw.commit()
    finally:
        raw.close()
    return engine


def minute_of(iso: str | None) -> float | None:
    if iso is None:
        return None
    t0 = datetime(START.year, START.month, START.day, tzinfo=NAIROBI)
    return (datetime.fromisoformat(iso) - t0).total_seconds() / 60


SCOPES = ("all", "one")  # incidents on all shortcodes (the targets), on one shortcode


def score(alert_list: list[dict], incidents: list[dict], days: int, *, warmup_days: int = 2) -> dict:
    """Per scope (all shortcodes, one shortcode): incidents found by day and by night,
    the same of those the data can show (see evidence), delays; false alarms per code
    per day."""
    fired = [a for a in alert_list if a["fired_at"]]
    found = {sc: {"day": [0, 0], "night": [0, 0]} for sc in SCOPES}
    visible = {sc: {"day": [0, 0], "night": [0, 0]} for sc in SCOPES}
    delays = {sc: {"day": [], "night": []} for sc in SCOPES}
    used = set()
    missed = []
    for inc in incidents:
        if inc.get("slow"):
            continue
        scope, part = "one" if inc["shortcode"] else "all", "night" if inc["night"] else "day"
        found[scope][part][1] += 1
        hits = [a for a in fired if a["code"] == inc["code"] and a["detector"] == "rate"
                and minute_of(a["started_at"]) <= inc["end"] + 30 and minute_of(a["fired_at"]) >= inc["start"]
                and (inc["shortcode"] == "" or a["shortcode"] in ("", inc["shortcode"]))]
        shows = "evidence" in inc and inc["evidence"]["score"] >= ceiling_level(inc["code"])
        visible[scope][part][1] += shows
        if not hits:
            missed.append(inc)
        if hits:
            found[scope][part][0] += 1
            visible[scope][part][0] += shows
            delays[scope][part].append(min(minute_of(a["fired_at"]) for a in hits) - inc["start"])
            used.update(a["id"] for a in hits)
    slow = [inc for inc in incidents if inc.get("slow")]
    slow_found = sum(1 for inc in slow if any(a["code"] == "1" and a["detector"] == "slow_burn"
                                             and inc["start"] <= minute_of(a["fired_at"]) <= inc["end"] + 360
                                             for a in fired))
    for inc in slow:
        used.update(a["id"] for a in fired if a["code"] == "1"
                    and minute_of(a["started_at"]) <= inc["end"] + 360 and minute_of(a["fired_at"]) >= inc["start"])
    false = {}
    for a in fired:
        if a["id"] not in used and minute_of(a["started_at"]) >= warmup_days * 1440:
            false[a["code"]] = false.get(a["code"], 0) + 1
    per_day = {c: v / (days - warmup_days) for c, v in false.items()}
    return {"found": found, "visible": visible, "delays": delays, "slow": (slow_found, len(slow)), "false_per_code_day": per_day,
            "missed": missed}


def static_threshold(txn: list, incidents: list, days: int) -> list[dict]:
    """Grafana-style: a code's 5-minute rate over all shortcodes above 3x its long-run
    rate (at least 1 point) for two buckets in a row; alerts as list_alerts dicts."""
    b5 = {}
    tot = {}
    for minute, _sc, _st, outcome, v, _a in txn:
        key = minute[:15] + str(int(minute[15]) // 5 * 5)
        tot[key] = tot.get(key, 0) + v
        if outcome not in ("0", "pending"):
            b5[(outcome, key)] = b5.get((outcome, key), 0) + v
    keys = sorted(tot)
    all_n = sum(tot.values())
    by_code: dict[str, dict] = {}
    for (code, key), v in b5.items():
        by_code.setdefault(code, {})[key] = v
    out = []
    for code, series in by_code.items():
        limit = max(3 * sum(series.values()) / all_n, 0.01)
        over = [series.get(k, 0) / tot[k] > limit for k in keys]
        i, n_id = 0, 0
        while i < len(keys):
            if over[i] and i + 1 < len(keys) and over[i + 1]:
                j = i + 1
                while j + 1 < len(keys) and (over[j + 1] or (j + 3 < len(keys) and any(over[j + 1:j + 4]))):
                    j += 1
                start = datetime.strptime(keys[i], "%Y-%m-%d %H:%M").replace(tzinfo=timezone.utc)
                fired = start + timedelta(minutes=10)
                n_id += 1
                out.append({"id": f"s-{code}-{n_id}", "code": code, "shortcode": "", "detector": "rate",
                            "started_at": start.isoformat(), "fired_at": fired.isoformat()})
                i = j + 1
            else:
                i += 1
    return out


def show(name: str, result: dict, days: int) -> None:
    worst = max(result["false_per_code_day"].items(), key=lambda kv: kv[1], default=("-", 0.0))
    total = sum(result["false_per_code_day"].values())
    ok = lambda good: "meets" if good else "MISSES"  # noqa: E731
    print(f"  {name}:")
    print(f"    false alarms/day/code  worst {worst[1]:.3f} ({worst[0]}), all codes {total:.3f}  target <= 0.1 per code: "
          f"{ok(worst[1] <= 0.1)}")
    for scope, label in (("all", "on all shortcodes (1037 surges, 9999 outages)"), ("one", "1037 surges on one shortcode")):
        f, v, d = result["found"][scope], result["visible"][scope], result["delays"][scope]
        if not (f["day"][1] or f["night"][1]):
            continue
        targets = scope == "all"  # the incidents; one-shortcode surges are shown beside them
        night_share = f["night"][0] / f["night"][1] if f["night"][1] else 1.0
        med_day = float(np.median(d["day"])) if d["day"] else float("nan")
        med_night = float(np.median(d["night"])) if d["night"] else float("nan")
        print(f"    incidents {label}:")
        print(f"      found by day         {f['day'][0]}/{f['day'][1]}"
              + (f"  target all: {ok(f['day'][0] == f['day'][1])}" if targets else ""))
        print(f"      found by night       {f['night'][0]}/{f['night'][1]}"
              + (f"  target >= 80 %: {ok(night_share >= 0.8)}" if targets else ""))
        print(f"      of those the data shows  day {v['day'][0]}/{v['day'][1]}, night {v['night'][0]}/{v['night'][1]}  "
              f"(an oracle knowing scope and span, binomial tail >= the warning level)")
        print(f"      median delay         day {med_day:.0f} min, night {med_night:.0f} min"
              + (f"  target day <= 10: {ok(med_day <= 10)}" if targets else "")
              + f"  (by day: {', '.join(f'{x:.0f}' for x in sorted(d['day']))})")
    if result["slow"][1]:
        print(f"    slow rises of code 1   {result['slow'][0]}/{result['slow'][1]}")
    for inc in result["missed"]:
        size = f"{inc['mult']:.1f}x on {inc['shortcode'] or 'all'}" if "mult" in inc else f"{inc['rate']:.1%} on all"
        ev = inc.get("evidence")
        seen = (f"; the data holds {ev['x']} failures in {ev['n']} attempts, {ev['n'] * ev['p']:.1f} expected: "
                f"oracle score {ev['score']:.1f} against the warning level {ceiling_level(inc['code']):.1f}") if ev else ""
        print(f"    missed                 {inc['code']} {size}, {inc['end'] - inc['start']} min "
              f"{'at night' if inc['night'] else 'by day'}{seen}")
    if result["false_per_code_day"]:
        print("    false alarms by code   " + ", ".join(f"{c} {v:.3f}" for c, v in
                                                     sorted(result["false_per_code_day"].items())))


def replay(days: int, per_day: int, seed: int, url_for) -> dict:
    """One incident-free replay (seed) and one with incidents (seed + 1), each scored
    for detection and for the static threshold; prints them and returns the scores."""
    print(f"\n{days} days at {per_day:,} payments a day (seed {seed}):")
    out = {}
    txn, dlv, _ = synthesise(days, per_day, seed, with_incidents=False)
    engine = load(url_for(f"clean-{per_day}-{seed}"), txn, dlv)
    detect(engine)
    out["detection, incident-free"] = score(list_alerts(engine, include_resolved=True), [], days)
    out["static threshold, incident-free"] = score(static_threshold(txn, [], days), [], days)
    txn, dlv, incidents = synthesise(days, per_day, seed + 1, with_incidents=True)
    engine = load(url_for(f"inc-{per_day}-{seed}"), txn, dlv)
    detect(engine)
    out["detection, with incidents"] = score(list_alerts(engine, include_resolved=True), incidents, days)
    out["static threshold, same incidents"] = score(static_threshold(txn, incidents, days), incidents, days)
    for name, result in out.items():
        show(name, result, days)
    return out


def pooled(results: list[dict]) -> dict:
    """Scores of several replays as one: counts and delays added up, false alarms per
    code per day averaged over the replays (each the same number of days)."""
    first = results[0]
    out = {"found": {}, "visible": {}, "delays": {}, "missed": []}
    for key in ("found", "visible"):
        out[key] = {sc: {part: [sum(r[key][sc][part][i] for r in results) for i in (0, 1)]
                         for part in first[key][sc]} for sc in first[key]}
    out["delays"] = {sc: {part: [d for r in results for d in r["delays"][sc][part]] for part in first["delays"][sc]}
                     for sc in first["delays"]}
    out["slow"] = tuple(sum(r["slow"][i] for r in results) for i in (0, 1))
    codes = {c for r in results for c in r["false_per_code_day"]}
    out["false_per_code_day"] = {c: sum(r["false_per_code_day"].get(c, 0.0) for r in results) / len(results)
                                 for c in codes}
    return out


def backfill(days: int, per_day: int, url: str) -> float:
    txn, dlv, _ = synthesise(days, per_day, 99, with_incidents=True)
    engine = load(url, txn, dlv)
    t = time.perf_counter()
    report = detect(engine)
    elapsed = time.perf_counter() - t
    print(f"\nbackfill: {days} days at {per_day:,} payments a day ({len(txn):,} minute rollup rows): "
          f"{elapsed:.2f} s  target < 10 s: {'meets' if elapsed < 10 else 'MISSES'}  ({report.message})")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--per-day", type=int, nargs="+", default=[2000, 50000])
    ap.add_argument("--backfill-days", type=int, default=90)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--replays", type=int, default=4,
                    help="replays per volume, with seeds seed, seed + 2, ...; the targets are judged on all of them")
    ap.add_argument("--pg", help="also time the backfill on this Postgres URL (an empty database)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        def url_for(name: str) -> str:
            return f"sqlite:///{Path(tmp) / name}.db"

        for per_day in args.per_day:
            runs = [replay(args.days, per_day, args.seed + 2 * k, url_for) for k in range(args.replays)]
            if args.replays > 1:
                print(f"\nall {args.replays} replays of {args.days} days at {per_day:,} payments a day:")
                for name in runs[0]:
                    show(name, pooled([r[name] for r in runs]), args.days)
        if args.backfill_days:
            backfill(args.backfill_days, 50_000, url_for("backfill"))
            if args.pg:
                backfill(args.backfill_days, 50_000, args.pg)


if __name__ == "__main__":
    sqlite3.register_adapter(np.int64, int)
    main()
