"""The command line is a contract: names, flags, JSON keys and exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import orjson
import pytest

from mpesa_ops.cli import build_parser, main

from conftest import REPO


def test_every_command_in_help_is_documented_in_the_readme():
    readme = (REPO / "README.md").read_text()
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name, parser in sub.choices.items():
        assert f"mpesa-ops {name}" in readme, f"README does not document `mpesa-ops {name}`"
        for action in parser._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert flag in readme, f"README does not document {name} {flag}"


def test_ingest_json_prints_exactly_the_five_counts(capsys, tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_bytes(orjson.dumps({"id": "x", "created_at": "2026-10-01T10:00:00Z", "status": "pending"}) + b"\n")
    assert main(["ingest", str(f), "--db", str(tmp_path / "s.db"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"read": 1, "loaded": 1, "updated": 0, "duplicates": 0, "rejected": 0}


def test_summary_json_keys_and_exact_amounts_on_both_databases(capsys, tmp_path, db_url):
    f = tmp_path / "t.jsonl"
    f.write_bytes(b"".join(orjson.dumps({"id": f"x{i}", "created_at": "2026-10-01T10:00:00Z", "status": "success",
                                         "result_code": 0, "amount": "100.05"}) + b"\n" for i in range(3)))
    assert main(["ingest", str(f), "--db", db_url, "--json", "--no-detect"]) == 0
    capsys.readouterr()
    assert main(["summary", "--db", db_url, "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    for key in ("transactions", "by_status", "by_result_code", "by_error_code", "deliveries",
                "deliveries_by_error", "rejected", "rejected_by_reason"):
        assert key in s
    assert s["transactions"] == 3 and s["by_result_code"] == {"0": 3}
    assert s["amount_kes_by_status"] == {"success": 300.15}  # Postgres sums to a Decimal: still a JSON number


def test_reading_a_sqlite_store_that_does_not_exist_fails_instead_of_creating_it(capsys, tmp_path):
    assert main(["summary", "--db", str(tmp_path / "typo.db")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("mpesa-ops summary: no store at ") and "typo.db" in err
    assert not (tmp_path / "typo.db").exists()


def test_a_missing_path_fails_with_one_line(capsys, tmp_path):
    assert main(["ingest", str(tmp_path / "nope.jsonl"), "--db", str(tmp_path / "s.db")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mpesa-ops ingest: nothing to read") and "nope.jsonl" in err[0]


def test_a_missing_path_beside_a_good_one_is_named_and_the_rest_loads(capsys, tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_text('{"id": "x", "created_at": "2026-10-01T10:00:00Z", "status": "pending"}\n')
    assert main(["ingest", str(f), str(tmp_path / "nope.jsonl"), "--db", str(tmp_path / "s.db"), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["loaded"] == 1 and "nope.jsonl: no such file or folder" in err


def test_an_unreachable_database_fails_with_one_line_and_no_password(tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_text("{}\n")
    proc = subprocess.run([sys.executable, "-m", "mpesa_ops", "ingest", str(f), "--db",
                           "postgresql://bob:s3cret@127.0.0.1:1/none"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot open the store" in lines[0] and "s3cret" not in lines[0]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("argv", [["ingest"], ["simulate", "--days", "0", "--seed", "1", "--out", "x"],
                                  ["nonsense"], ["ingest", "x", "--bogus"]])
def test_wrong_usage_exits_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


def test_version_of_the_text_report(capsys, tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_text('{"id": "x", "created_at": "2026-10-01T10:00:00Z", "status": "pending"}\n{bad\n')
    assert main(["ingest", str(f), "--db", str(tmp_path / "s.db")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"read 2 records from 1 file", out) and re.search(r"rejected\s+1", out)


def test_demo_simulates_loads_and_summarises(capsys, tmp_path, monkeypatch):
    import datetime as dt

    from mpesa_ops import cli

    noon = dt.datetime.combine(dt.date.today(), dt.time(9, 0), dt.timezone.utc)  # 12:00 in Nairobi
    monkeypatch.setattr(cli, "_now", lambda: noon)
    assert main(["demo", "--dir", str(tmp_path / "demo"), "--days", "2", "--per-day", "150", "--seed", "3", "--no-dashboard"]) == 0
    out = capsys.readouterr().out
    m = re.search(r"read ([\d,]+): loaded ([\d,]+), updated ([\d,]+), duplicates ([\d,]+), rejected ([\d,]+)", out)
    read, loaded, updated, duplicates, rejected = (int(g.replace(",", "")) for g in m.groups())
    assert read == loaded + updated + duplicates + rejected and loaded > 0
    assert "by M-Pesa result code:" in out and (tmp_path / "demo" / "demo.db").exists()
    # run again: a fresh store, the same data, the same summary
    assert main(["demo", "--dir", str(tmp_path / "demo"), "--days", "2", "--per-day", "150", "--seed", "3", "--no-dashboard"]) == 0
    assert capsys.readouterr().out == out


def test_demo_late_in_the_utc_day_still_ends_its_logs_now_with_the_outage(capsys, tmp_path, monkeypatch):
    """At 22:30 UTC it is 01:30 the next day in Nairobi, the simulator's clock: the demo's
    logs must reach that moment (they used to stop at Nairobi midnight, before the
    outage the demo promises)."""
    import datetime as dt

    from mpesa_ops import cli

    late = dt.datetime.combine(dt.date.today(), dt.time(22, 30), dt.timezone.utc)
    monkeypatch.setattr(cli, "_now", lambda: late)
    folder = tmp_path / "demo"
    assert main(["demo", "--dir", str(folder), "--days", "2", "--per-day", "3000", "--seed", "3", "--no-dashboard"]) == 0
    rows = [orjson.loads(line) for line in (folder / "logs" / "transactions.jsonl").read_bytes().splitlines()]
    newest = max(dt.datetime.fromisoformat(r["created_at"]) for r in rows)
    assert late - dt.timedelta(hours=1) < newest <= late
    outage = [i for i in orjson.loads((folder / "logs" / "incidents.json").read_bytes()) if i["code"] == "9999"][-1]
    assert dt.datetime.fromisoformat(outage["start"]) < late <= dt.datetime.fromisoformat(outage["end"])
    assert any(r["result_code"] == 9999 and dt.datetime.fromisoformat(r["created_at"]) >=
               dt.datetime.fromisoformat(outage["start"]) for r in rows)


def test_ingest_of_simulated_logs_by_name_never_stores_the_webhook_secrets(capsys, tmp_path):
    from mpesa_ops.ingest.db import open_store
    from mpesa_ops.ingest.schema import rejected_records
    from mpesa_ops.ingest.simulate import simulate

    simulate(tmp_path / "logs", days=1, seed=2, per_day=50)
    secrets = orjson.loads((tmp_path / "logs" / "webhook-secrets.json").read_bytes())
    db = str(tmp_path / "s.db")
    assert main(["ingest", *map(str, sorted((tmp_path / "logs").iterdir())), "--db", db, "--no-detect"]) == 0
    assert "2 other files skipped: not a log file" in capsys.readouterr().out
    engine = open_store(db)
    with engine.connect() as conn:
        raw = " ".join(r for (r,) in conn.execute(rejected_records.select().with_only_columns(rejected_records.c.raw)))
    engine.dispose()
    for endpoint in secrets["endpoints"].values():
        assert endpoint["current"] not in raw
