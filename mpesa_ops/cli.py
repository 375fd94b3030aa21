"""The mpesa-ops command line. Exit status: 0 success, 1 the work failed (one line on
stderr naming the cause and what to do), 2 wrong usage."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
from pathlib import Path

import orjson

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEMO_DIR = "mpesa-ops-demo"


class Failure(Exception):
    """The work failed; the message is the one line the user sees."""


def _print_json(value) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def _store(db: str | None, *, must_exist: bool = False):
    from mpesa_ops.ingest.db import StoreError, open_store

    try:
        return open_store(db, must_exist=must_exist)
    except StoreError as exc:
        raise Failure(str(exc)) from None


# --- simulate ---

def cmd_simulate(args) -> int:
    from mpesa_ops.ingest.simulate import simulate

    try:
        result = simulate(Path(args.out), days=args.days, seed=args.seed, per_day=args.per_day,
                          start=args.start, gzip=args.gzip)
    except ValueError as exc:
        raise Failure(f"simulate: {exc}") from None
    except OSError as exc:
        raise Failure(f"simulate: cannot write to {args.out}: {exc.strerror or exc}") from None
    if args.json:
        _print_json(result)
    else:
        print(f"wrote {result['transactions']:,} payment requests ({result['transaction_rows']:,} log rows), "
              f"{result['callbacks']:,} callbacks, {result['deliveries']:,} webhook deliveries and "
              f"{result['incidents']} injected incidents to {args.out}")
    return EXIT_OK


# --- what follows every load ---

def _after_load(engine, *, quiet: bool, command: str, live: bool = False, notify: bool = True,
                secrets_file=None) -> None:
    """Signature verdicts for new refused deliveries, then detection and its
    notifications. The load is committed before this runs, so a failure here costs
    a line on stderr, never the load; `mpesa-ops detect` runs detection again.
    `live`: judge at the wall clock (a pull that keeps the store current), so that
    silence after the last payment counts as a drop in volume; otherwise detection
    judges at the end of the stored data, so a historical file gives stable alerts."""
    from mpesa_ops.ingest.db import error_reason

    _refresh_verdicts(engine, secrets_file, quiet=quiet)
    try:
        from mpesa_ops.ingest.detect.run import detect
        from mpesa_ops.ingest.notify import send_pending

        report = detect(engine, now=dt.datetime.now(dt.timezone.utc) if live else None)
        errors = send_pending(engine).errors if notify else []
    except Exception as exc:  # the store or a setting: either way the load stands
        print(f"mpesa-ops {command}: detection did not run: {error_reason(exc)}; "
              "run mpesa-ops detect once the cause is fixed", file=sys.stderr, flush=True)
        return
    if not quiet:
        print(f"detection: {report.message}", flush=True)
    for line in errors:
        print(f"mpesa-ops {command}: {line}", file=sys.stderr, flush=True)


# --- ingest ---

def _refresh_verdicts(engine, secrets_file=None, *, quiet: bool) -> None:
    """Signature verdicts for refused deliveries; the load itself is already committed,
    so a broken secrets file costs the verdicts, not the load."""
    from mpesa_ops.config import ConfigError
    from mpesa_ops.ingest.verdicts import refresh_verdicts
    from mpesa_ops.ingest.webhook_secrets import load_config

    try:
        report = refresh_verdicts(engine, load_config(secrets_file))
    except ConfigError as exc:
        print(f"mpesa-ops: webhook secrets: {exc}; signature verdicts not computed", file=sys.stderr)
        return
    if not quiet:
        print(report.message)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def cmd_ingest(args) -> int:
    engine = _store(args.db)
    report = _ingest(engine, args.paths, progress=not args.json and sys.stderr.isatty(), command="ingest")
    if report.files:  # some paths loaded: name the ones that did not (with none, the failure line says it)
        for path in report.missing:
            print(f"mpesa-ops ingest: {path}: no such file or folder", file=sys.stderr)
    if not report.files:
        if report.missing:
            raise Failure(f"nothing to read: {', '.join(report.missing)} not found")
        raise Failure("nothing to read: no .json, .jsonl, .ndjson or .csv files (optionally .gz) in "
                      + ", ".join(args.paths))
    c = report.counts
    if args.json:
        if not args.no_detect:
            _after_load(engine, quiet=True, command="ingest")
        _print_json({k: getattr(c, k) for k in ("read", "loaded", "updated", "duplicates", "rejected")})
        return EXIT_OK
    print(f"read {_plural(c.read, 'record')} from {_plural(len(report.files), 'file')}"
          + (f" ({_plural(len(report.skipped), 'other file')} skipped: not a log file)" if report.skipped else ""))
    print(f"  loaded      {c.loaded:>10,}  new payments, events and deliveries")
    print(f"  updated     {c.updated:>10,}  stored payments or deliveries changed by a newer state")
    print(f"  duplicates  {c.duplicates:>10,}  already stored, or older than what is stored")
    print(f"  rejected    {c.rejected:>10,}" + ("  kept with their reasons: mpesa-ops summary" if c.rejected else ""))
    for path in report.empty:
        print(f"note: {path} holds no records (empty file)")
    if not args.no_detect:
        _after_load(engine, quiet=False, command="ingest")
    return EXIT_OK


def _ingest(engine, paths: list[str], *, progress: bool, command: str):
    """ingest_paths, with a load that stopped turned into one line: the store's
    reason, or an internal error to report."""
    from sqlalchemy.exc import SQLAlchemyError

    from mpesa_ops.ingest.db import error_reason, redact
    from mpesa_ops.ingest.run import ingest_paths
    from mpesa_ops.ingest.writer import WriterError

    try:
        return ingest_paths(engine, paths, progress=progress, command=command)
    except Exception as exc:
        reason = error_reason(exc)
        if isinstance(exc, (SQLAlchemyError, WriterError)):
            message = (f"the load stopped: the store at {redact(str(engine.url))} failed: {reason}. Batches "
                       "committed before it are kept; run the same command again to finish.")
        else:
            message = (f"the load stopped on an internal error ({type(exc).__name__}: {reason}); batches committed "
                       "before it are kept. Please report this with the command you ran.")
        raise Failure(message) from None


# --- summary ---

def cmd_summary(args) -> int:
    from mpesa_ops.ingest.summary import summary

    engine = _store(args.db, must_exist=True)
    s = summary(engine)
    if args.json:
        _print_json(s)
        return EXIT_OK
    print_summary(s)
    return EXIT_OK


def print_summary(s: dict) -> None:
    from mpesa_ops import catalogue

    print(f"payments: {s['transactions']:,}" + (f"  ({s['conflicting_results']:,} with conflicting results)"
                                               if s["conflicting_results"] else ""))
    for status, n in s["by_status"].items():
        kes = s["amount_kes_by_status"].get(status, 0)
        print(f"  {status:<10} {n:>10,}   KES {kes:>16,.2f}")
    if s["by_result_code"]:
        print("by M-Pesa result code:")
        for code, n in s["by_result_code"].items():
            print(f"  {code:<12} {n:>10,}   {catalogue.lookup(code).title}")
    if s["by_error_code"]:
        print("by gateway or Daraja error:")
        for code, n in s["by_error_code"].items():
            info = catalogue.lookup(code)
            http = f"HTTP {info.http_status}" if info.http_status else ""
            print(f"  {code:<20} {n:>8,}   {http:<8} {info.title}")
    print(f"webhook deliveries: {s['deliveries']:,}")
    for err, n in s["deliveries_by_error"].items():
        print(f"  {err:<20} {n:>8,}")
    print(f"rejected records: {s['rejected']:,}")
    for reason, n in s["rejected_by_reason"].items():
        print(f"  {reason:<30} {n:>8,}")


# --- demo ---

def _now() -> dt.datetime:
    """The clock the demo ends its logs at (a test sets it)."""
    return dt.datetime.now(dt.timezone.utc)


def cmd_demo(args) -> int:
    from mpesa_ops.ingest.fields import NAIROBI
    from mpesa_ops.ingest.simulate import simulate
    from mpesa_ops.ingest.summary import summary

    folder = Path(args.dir)
    logs = folder / "logs"
    db = args.db or f"sqlite:///{folder / 'demo.db'}"
    if args.db is None:  # the demo store is rebuilt each time, so it always matches today's logs
        for suffix in ("", "-wal", "-shm"):
            Path(f"{folder / 'demo.db'}{suffix}").unlink(missing_ok=True)
    now = _now()
    # the simulator's days are Nairobi days: after 21:00 UTC, today there is tomorrow here
    start = now.astimezone(NAIROBI).date() - dt.timedelta(days=args.days - 1)
    print(f"simulating {args.days} days of payments up to now into {logs} …", file=sys.stderr)
    try:
        if logs.exists():
            shutil.rmtree(logs)
        # Ending now, as a live gateway's logs do (nothing from later today), with an
        # outage under way, so the dashboard opens on a live incident.
        written = simulate(logs, days=args.days, seed=args.seed, per_day=args.per_day, start=start,
                           until=now, outage_at_until=True)
    except OSError as exc:
        raise Failure(f"cannot write the demo logs to {logs}: {exc.strerror or exc}; choose another --dir") from None
    engine = _store(db)
    # As in production: the gateway's transaction and webhook logs come over its log API
    # (here the gateway simulator on 127.0.0.1), Safaricom's callbacks from their log file.
    c = _demo_pull(engine, logs)
    callbacks = [str(logs / name) for name in written["files"] if name.startswith("callbacks")]
    print("loading the callback log …", file=sys.stderr)
    c.add(_ingest(engine, callbacks, progress=sys.stderr.isatty(), command="demo").counts)
    print(f"read {c.read:,}: loaded {c.loaded:,}, updated {c.updated:,}, duplicates {c.duplicates:,}, "
          f"rejected {c.rejected:,}")
    secrets_file = logs / "webhook-secrets.json"
    # No notifications: the demo's alerts are not news for anyone's Slack channel.
    _after_load(engine, quiet=False, command="demo", notify=False, secrets_file=secrets_file)
    print_summary(summary(engine))
    engine.dispose()
    if args.no_dashboard:
        print(f"\nthe demo store is {db}; explore it with: MPESA_OPS_WEBHOOK_SECRETS_FILE={secrets_file} "
              f"mpesa-ops dashboard --db {db}")
        return EXIT_OK
    from mpesa_ops.dashboard_cli import run_dashboard

    os.environ["MPESA_OPS_WEBHOOK_SECRETS_FILE"] = str(secrets_file.resolve())  # the page diagnoses live too
    print(f"\nstarting the dashboard on the demo store {db} (Ctrl-C stops it) …", file=sys.stderr)
    return run_dashboard(db, port=args.port)


def _demo_pull(engine, logs: Path):
    """Serve the demo's logs from the gateway simulator and pull them over HTTP."""
    from mpesa_ops.ingest.gateway_sim import GatewaySim
    from mpesa_ops.ingest.pull.run import PullError, pull_once
    from mpesa_ops.ingest.pull.sources import load_settings
    from mpesa_ops.pull_cli import SIM_KEY, SIM_LINK

    sim = GatewaySim.from_dir(logs, api_keys=[SIM_KEY], link_ids=[SIM_LINK])
    with sim.running() as url:
        print(f"pulling the gateway's logs from the gateway simulator at {url} …", file=sys.stderr)
        settings = load_settings(base_url=url, api_key=SIM_KEY, link_id=SIM_LINK, secrets={})
        try:
            return pull_once(engine, settings).counts
        except PullError as exc:
            raise Failure(f"the demo pull failed: {exc}") from None


# --- verify ---

def cmd_verify(args) -> int:
    from mpesa_ops.verify_cli import UsageError, print_text, run

    try:
        status, result = run(args)
    except UsageError as exc:
        print(f"mpesa-ops verify: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        _print_json(result)
    else:
        print_text(result)
    return status


# --- parser ---

def build_parser() -> argparse.ArgumentParser:
    from mpesa_ops.cli_args import date, positive_int
    from mpesa_ops.ingest.simulate import DEFAULT_START

    p = argparse.ArgumentParser(prog="mpesa-ops", description="Operations monitoring for M-Pesa STK Push collections.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    db_help = "database URL (default: $MPESA_OPS_DB, else sqlite file mpesa-ops.db here)"

    s = sub.add_parser("simulate", help="write realistic demo logs and incidents.json (the injected ground truth)")
    s.add_argument("--days", type=positive_int, required=True, help="how many days of traffic")
    s.add_argument("--seed", type=int, required=True, help="random seed: the same seed gives the same bytes")
    s.add_argument("--out", required=True, help="folder to write the logs into")
    s.add_argument("--per-day", type=positive_int, default=2000, help="average payment requests a day (default 2000)")
    s.add_argument("--start", type=date, default=DEFAULT_START,
                   help=f"first day, Nairobi date (default {DEFAULT_START.isoformat()})")
    s.add_argument("--gzip", action="store_true", help="gzip the log files")
    s.add_argument("--json", action="store_true", help="print what was written as one JSON object")
    s.set_defaults(func=cmd_simulate)

    i = sub.add_parser("ingest", help="load log files or folders into the store")
    i.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (.json, .jsonl, .ndjson, .csv, .gz)")
    i.add_argument("--db", help=db_help)
    i.add_argument("--json", action="store_true", help="print one JSON object: read, loaded, updated, duplicates, rejected")
    i.add_argument("--no-detect", action="store_true",
                   help="skip signature verdicts and detection after the load (when loading many files in a row: "
                        "run mpesa-ops detect after the last)")
    i.set_defaults(func=cmd_ingest)

    m = sub.add_parser("summary", help="totals by status, result code, error code, deliveries and rejects")
    m.add_argument("--db", help=db_help)
    m.add_argument("--json", action="store_true", help="print one JSON object")
    m.set_defaults(func=cmd_summary)

    from mpesa_ops.verify_cli import add_parser as add_verify

    add_verify(sub)
    sub.choices["verify"].set_defaults(func=cmd_verify)

    from mpesa_ops import dashboard_cli, detect_cli, pull_cli

    for module in (pull_cli, detect_cli, dashboard_cli):
        module.add_parsers(sub, db_help)

    d = sub.add_parser("demo", help="simulate, pull and load demo data, detect, and start the dashboard on it")
    d.add_argument("--db", help=f"database URL (default: a fresh SQLite file in {DEMO_DIR}/)")
    d.add_argument("--dir", default=DEMO_DIR, help=f"folder for the demo logs and store (default {DEMO_DIR})")
    d.add_argument("--days", type=positive_int, default=35, help="days of traffic up to now (default 35)")
    d.add_argument("--per-day", type=positive_int, default=2000, help="payment requests a day (default 2000)")
    d.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    d.add_argument("--port", type=positive_int, help="the dashboard's port (default 8501)")
    d.add_argument("--no-dashboard", action="store_true", help="stop after loading and detection; do not start the dashboard")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except Failure as exc:
        print(f"mpesa-ops {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:  # the reader (head, less) stopped listening: not our failure
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
        return EXIT_OK
    except KeyboardInterrupt:
        print(f"mpesa-ops {args.command}: interrupted; what was committed is kept, run it again to finish",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
