"""Command-line parsers for `mpesa-ops pull` and `mpesa-ops gateway-sim`."""

from __future__ import annotations

import os
import sys
import threading

import orjson

from mpesa_ops.cli_args import count, positive_int, seconds

SIM_KEY, SIM_LINK = "sim-api-key", "sim-link-id"


# --- pull ---

def cmd_pull(args) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from mpesa_ops.cli import Failure, _after_load, _store
    from mpesa_ops.config import ConfigError
    from mpesa_ops.ingest.db import error_reason, redact
    from mpesa_ops.ingest.pull.run import PullError, pull_once, stop_on_signals, watch
    from mpesa_ops.ingest.pull.sources import SettingsError, load_settings

    try:
        settings = load_settings(base_url=args.base_url, api_key=args.api_key, link_id=args.link_id,
                                 page_size=args.page_size, lag_seconds=args.lag)
    except (SettingsError, ConfigError) as exc:
        raise Failure(str(exc)) from None
    engine = _store(args.db)
    stop = threading.Event()
    restore = stop_on_signals(stop)
    show = (lambda report: _print_json_line(report.as_dict())) if args.json else _print_report
    try:
        if args.watch is None:
            report = pull_once(engine, settings, stop=stop)
            show(report)
            if not args.no_detect:
                _after_load(engine, quiet=args.json, command="pull", live=True)
            if report.stopped:
                print("mpesa-ops pull: stopped on request; the pages committed are kept, run it again to continue",
                      file=sys.stderr)
                return 130
            return 0
        after_round = None if args.no_detect else lambda e: _after_load(e, quiet=True, command="pull", live=True)
        watch(engine, settings, args.watch, stop=stop, after_round=after_round,
              on_round=show,
              on_error=lambda exc: print(f"mpesa-ops pull: {exc}; trying again in {args.watch:g} s",
                                         file=sys.stderr, flush=True))
        print("mpesa-ops pull: stopped; the pages committed are kept", file=sys.stderr, flush=True)
        return 0
    except PullError as exc:
        raise Failure(f"{exc}. Pages committed before it are kept.") from None
    except SQLAlchemyError as exc:
        raise Failure(f"the pull stopped: the store at {redact(str(engine.url))} failed: {error_reason(exc)}. "
                      "Pages committed before it are kept; run the same command again to continue.") from None
    finally:
        restore()


def _print_json_line(value) -> None:
    """One compact JSON object per line, flushed: `--watch --json` is a stream a script
    reads round by round (cli._print_json indents one object for people)."""
    sys.stdout.write(orjson.dumps(value).decode() + "\n")
    sys.stdout.flush()


def _print_report(report) -> None:
    for s in report.streams:
        c = s.counts
        where = "resumed a stopped walk" if s.resumed else (
            f"updated since {s.since:%Y-%m-%d %H:%M:%S}Z" if s.since else "from the start")
        print(f"{s.name:<13} {s.pages:>5,} pages  read {c.read:>9,}  loaded {c.loaded:>9,}  updated {c.updated:>8,}"
              f"  duplicates {c.duplicates:>8,}  rejected {c.rejected:>6,}  ({where})")
    c = report.counts
    print(f"{'total':<13} {sum(s.pages for s in report.streams):>5,} pages  read {c.read:>9,}  loaded {c.loaded:>9,}"
          f"  updated {c.updated:>8,}  duplicates {c.duplicates:>8,}  rejected {c.rejected:>6,}", flush=True)
    if report.retries:
        print(f"{report.retries:,} request{'s' if report.retries > 1 else ''} retried after rate limits, server "
              "errors or timeouts", flush=True)


# --- gateway-sim ---

def cmd_gateway_sim(args) -> int:
    from mpesa_ops.cli import Failure
    from mpesa_ops.ingest.gateway_sim import Faults, GatewaySim

    keys = args.api_key or [os.environ.get("MPESA_OPS_API_KEY") or SIM_KEY]
    links = args.link_id or [os.environ.get("MPESA_OPS_LINK_ID") or SIM_LINK]
    try:
        sim = GatewaySim.from_dir(args.data, api_keys=keys, link_ids=links, inactive_link_ids=args.inactive_link_id)
    except OSError as exc:
        raise Failure(str(exc)) from None
    sim.faults = Faults(rate_limit=args.rate_limit, retry_after=args.retry_after, server_errors=args.server_errors,
                        stall=args.stall, stall_seconds=args.stall_seconds, delay=args.delay,
                        truncated=args.truncate, not_json=args.not_json, wrong_shape=args.wrong_shape,
                        loop=args.loop, error=args.error)
    try:
        url = sim.start(args.port)
    except OSError as exc:
        raise Failure(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}; choose another --port") from None
    defaults = " (credentials: sim-api-key / sim-link-id)" if keys == [SIM_KEY] and links == [SIM_LINK] else ""
    print(f"gateway simulator at {url} serving {sim.count('transactions'):,} transaction rows and "
          f"{sim.count('deliveries'):,} webhook deliveries from {args.data}{defaults}; Ctrl-C to stop", flush=True)
    stop = threading.Event()
    from mpesa_ops.ingest.pull.run import stop_on_signals

    restore = stop_on_signals(stop)
    try:
        stop.wait()
    finally:
        restore()
        sim.stop()
    return 0


def add_parsers(sub, db_help: str) -> None:
    """Register `pull` and `gateway-sim` on the `mpesa-ops` subparsers."""
    p = sub.add_parser("pull", help="pull the gateway's transaction and webhook-delivery logs into the store")
    p.add_argument("--db", help=db_help)
    p.add_argument("--base-url", help="the gateway's API address (else $MPESA_OPS_BASE_URL, else [gateway] base_url "
                                      "in .streamlit/secrets.toml)")
    p.add_argument("--api-key", help="the gateway API key (else $MPESA_OPS_API_KEY, else [gateway] api_key); "
                                     "prefer those two: a flag shows in the process list")
    p.add_argument("--link-id", help="the shortcode's link id, the linkid header (else $MPESA_OPS_LINK_ID, "
                                     "else [gateway] link_id)")
    p.add_argument("--watch", type=seconds, metavar="SECONDS",
                   help="keep pulling, a round every SECONDS, running detection after each; "
                        "Ctrl-C or SIGTERM stops after the page in flight is committed")
    p.add_argument("--lag", type=seconds, metavar="SECONDS",
                   help="re-read this much before the newest update seen, for late updates "
                        "(else $MPESA_OPS_PULL_LAG, else [gateway] lag_seconds, else 600)")
    p.add_argument("--page-size", type=positive_int, metavar="N",
                   help="records asked for per page (else $MPESA_OPS_PULL_PAGE_SIZE, else [gateway] page_size, "
                        "else 2000)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (one per round with --watch): read, loaded, updated, duplicates, "
                        "rejected, pages, stopped, retries, run_id and streams")
    p.add_argument("--no-detect", action="store_true",
                   help="skip signature verdicts and detection after each round (when mpesa-ops detect runs apart)")
    p.set_defaults(func=cmd_pull)

    g = sub.add_parser("gateway-sim", help="serve simulate's logs over the gateway's log API on 127.0.0.1, "
                                           "with faults on request")
    g.add_argument("--data", required=True, metavar="DIR", help="folder written by mpesa-ops simulate")
    g.add_argument("--port", type=count, default=8089, help="port on 127.0.0.1 (default 8089; 0: any free port)")
    g.add_argument("--api-key", action="append", metavar="KEY",
                   help=f"an API key to accept (repeatable; default $MPESA_OPS_API_KEY, else {SIM_KEY})")
    g.add_argument("--link-id", action="append", metavar="ID",
                   help=f"a link id to accept (repeatable; default $MPESA_OPS_LINK_ID, else {SIM_LINK})")
    g.add_argument("--inactive-link-id", action="append", default=[], metavar="ID",
                   help="a link id answered with INACTIVE_SHORTCODE (repeatable)")
    g.add_argument("--error", metavar="CODE", help="answer every page request with this gateway error code, "
                                                   "e.g. MPESA_UNAVAILABLE")
    g.add_argument("--rate-limit", type=count, default=0, metavar="N", help="answer the next N requests with 429")
    g.add_argument("--retry-after", default="1", metavar="SECONDS", help="the Retry-After sent with a 429 (default 1)")
    g.add_argument("--server-errors", type=count, default=0, metavar="N", help="answer the next N requests with 500")
    g.add_argument("--delay", type=seconds, default=0.0, metavar="SECONDS", help="answer every page this much later")
    g.add_argument("--stall", type=count, default=0, metavar="N", help="hold the next N answers --stall-seconds")
    g.add_argument("--stall-seconds", type=seconds, default=5.0, metavar="SECONDS",
                   help="how long a stalled answer is held (default 5)")
    g.add_argument("--truncate", type=count, default=0, metavar="N", help="cut the next N pages in half")
    g.add_argument("--not-json", type=count, default=0, metavar="N", help="answer the next N pages with HTML")
    g.add_argument("--wrong-shape", type=count, default=0, metavar="N",
                   help="answer the next N pages with JSON that is not a page")
    g.add_argument("--loop", action="store_true", help="hand back the same next cursor forever (a pagination loop)")
    g.set_defaults(func=cmd_gateway_sim)
