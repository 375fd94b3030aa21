"""Readers: every container and encoding gives the same records with the right line
numbers; broken input becomes error records while the good records around it still
come out; memory stays flat; discover() picks the log files of a folder tree."""

from __future__ import annotations

import codecs
import csv
import gc
import gzip
import io
import json
import tempfile
import textwrap
import tracemalloc
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpesa_ops.ingest import readers
from mpesa_ops.ingest.readers import RawRecord, discover, raw_text, read_records, sniff_format

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "daraja"
ERROR_CODES = {"invalid_json", "truncated", "not_utf8", "invalid_csv"}

RECORDS = [
    {"id": "txn_1", "created_at": "2025-06-01T10:00:00+03:00", "msisdn": "254712345678", "amount": 1500,
     "status": "success", "note": "café — Nairobi",
     "headers": {"X-Signature": "sha256=ab12", "Content-Type": "application/json"}},
    {"id": "txn_2", "created_at": "2025-06-01T10:05:00Z", "msisdn": "0712 345 678", "amount": 12.5,
     "status": "failed", "note": "two\nlines, \"quoted\"", "headers": {"X-Timestamp": "1748761500"}},
    {"id": "txn_3", "created_at": "2025-06-01 10:10:00", "msisdn": None, "amount": 300000,
     "status": "pending", "note": "", "headers": {}},
]


def csv_expected(rec: dict) -> dict:
    """What a CSV row of `rec` reads back as: text cells, empty cells absent (None)."""
    out = {}
    for k, v in rec.items():
        if isinstance(v, dict):
            v = json.dumps(v)
        out[k] = None if v is None or v == "" else str(v)
    return out


# --- writers: (text, start line of each record) ----------------------------------

def w_jsonl(recs, eol):
    return "".join(json.dumps(r, ensure_ascii=False) + eol for r in recs), [1, 2, 3][:len(recs)]


def w_array_compact(recs, eol):
    return json.dumps(recs, ensure_ascii=False) + eol, [1] * len(recs)


def w_array_lines(recs, eol):
    return "[" + ("," + eol).join(json.dumps(r) for r in recs) + "]" + eol, list(range(1, len(recs) + 1))


def w_array_pretty(recs, eol):
    parts, lines, line = ["[\n"], [], 2
    for i, r in enumerate(recs):
        body = textwrap.indent(json.dumps(r, indent=2, ensure_ascii=False), "  ")
        lines.append(line)
        parts.append(body + (",\n" if i < len(recs) - 1 else "\n"))
        line += body.count("\n") + 1
    parts.append("]\n")
    return "".join(parts).replace("\n", eol), lines


def w_single_pretty(recs, eol):
    return "\n" + json.dumps(recs[0], indent=4) + "\n", [2]


def w_concat_pretty(recs, eol):
    parts, lines, line = [], [], 1
    for r in recs:
        body = json.dumps(r, indent=2, ensure_ascii=False)
        lines.append(line)
        parts.append(body + "\n")
        line += body.count("\n") + 1
    return "".join(parts).replace("\n", eol), lines


def w_csv(recs, eol):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=eol)
    writer.writerow(list(recs[0]))
    lines, line = [], 2
    for r in recs:
        row = [json.dumps(v) if isinstance(v, dict) else ("" if v is None else v) for v in r.values()]
        writer.writerow(row)
        lines.append(line)
        line += 1 + sum(str(v).count("\n") for v in row)
    return out.getvalue(), lines


FORMATS = {  # name: (writer, file name, records used)
    "jsonl": (w_jsonl, "log.jsonl", 3),
    "ndjson": (w_jsonl, "log.ndjson", 3),
    "jsonl_named_json": (w_jsonl, "log.json", 3),
    "array_compact": (w_array_compact, "log.json", 3),
    "array_one_per_line": (w_array_lines, "log.json", 3),
    "array_pretty": (w_array_pretty, "log.json", 3),
    "single_pretty": (w_single_pretty, "callback.json", 1),
    "concat_pretty": (w_concat_pretty, "log.json", 3),
    "csv": (w_csv, "log.csv", 3),
}
ENCODINGS = {
    "utf8": lambda t: t.encode("utf-8"),
    "utf8_bom": lambda t: codecs.BOM_UTF8 + t.encode("utf-8"),
    "utf16le_bom": lambda t: codecs.BOM_UTF16_LE + t.encode("utf-16-le"),
    "utf16be_bom": lambda t: codecs.BOM_UTF16_BE + t.encode("utf-16-be"),
}


def write(path: Path, data: bytes, compression: str = "none") -> Path:
    if compression == "gz":
        path = path.with_name(path.name + ".gz")
    if compression != "none":
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path


def read(path: Path) -> list[RawRecord]:
    return list(read_records(path))


def summary(recs: list[RawRecord]) -> list[tuple]:
    return [(r.line, r.error_code) if r.error else (r.line, r.value) for r in recs]


@pytest.mark.parametrize("compression", ["none", "gz", "gz_no_suffix"])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_same_records_from_every_container(tmp_path, fmt, compression):
    writer, name, n = FORMATS[fmt]
    recs = RECORDS[:n]
    expected = [csv_expected(r) for r in recs] if fmt == "csv" else recs
    for encoding, encode in ENCODINGS.items():
        for eol in ("\n", "\r\n"):
            case = f"{fmt} {compression} {encoding} {eol!r}"
            text, lines = writer(recs, eol)
            path = write(tmp_path / name, encode(text), compression)
            got = read(path)
            assert [r.error for r in got] == [None] * n, case
            assert [r.line for r in got] == lines, case
            assert [r.value for r in got] == expected, case
            if fmt != "csv":  # the kept raw text is the record itself
                assert [json.loads(raw_text(r.raw)) for r in got] == recs, case


def test_every_real_sample_reads_to_one_record(tmp_path):
    paths = sorted(SAMPLES.glob("*.json"))
    assert len(paths) >= 20
    for path in paths:
        got = read(path)
        assert len(got) == 1, path.name
        assert got[0].error is None and got[0].error_code is None, path.name
        assert got[0].value == json.loads(path.read_text()), path.name
        assert got[0].line == 1
        # and the same file gzipped, under its own name
        gz = write(tmp_path / path.name, path.read_bytes(), "gz_no_suffix")
        assert summary(read(gz)) == summary(got)


def test_all_samples_concatenated_as_one_file(tmp_path):
    paths = sorted(SAMPLES.glob("*.json"))
    text, lines, line = "", [], 1
    for path in paths:
        body = path.read_text().strip() + "\n"
        lines.append(line)
        line += body.count("\n")
        text += body
    got = read(write(tmp_path / "callbacks.json", text.encode()))
    assert [r.error for r in got] == [None] * len(paths)
    assert [r.line for r in got] == lines
    assert [r.value for r in got] == [json.loads(p.read_text()) for p in paths]


# --- broken input ----------------------------------------------------------------

def jl(*recs) -> list[bytes]:
    return [json.dumps(r).encode() + b"\n" for r in recs]


GOOD = [{"id": f"g{i}", "amount": i, "nested": {"a": [1, {"b": None}]}} for i in range(1, 6)]


@pytest.mark.parametrize("name", ["log.jsonl", "log.json"])
def test_jsonl_truncated_last_line(tmp_path, name):
    lines = jl(*GOOD[:3]) + [b'{"id": "g4", "amount": 4, "nested": {"a": [1']
    got = read(write(tmp_path / name, b"".join(lines)))
    assert summary(got) == [(1, GOOD[0]), (2, GOOD[1]), (3, GOOD[2]), (4, "truncated")]


@pytest.mark.parametrize("name", ["log.jsonl", "log.json"])
@pytest.mark.parametrize("bad, code", [
    (b'{"id": "x", "amount": 4, "nested": {"a": [1\n', "truncated"),
    (b'{"id": "x", "amount": 4, "nested": {"a": 1}\n', "truncated"),   # ends in "}" yet cut short
    (b'{"id": "x", "amount": tr\n', "truncated"),
    (b'{"id": "x", "note": "abc\n', "truncated"),
    (b'{"id": "x",, "amount": 4}\n', "invalid_json"),
    (b'{"id": "x", "amount": 4}}\n', "invalid_json"),
    (b'{id: "x"}\n', "invalid_json"),
    (b"not json at all\n", "invalid_json"),
    (b'{"id": "x", "amount": NaN}\n', "invalid_json"),
    (b"\x00\x00\x00\x00\n", "invalid_json"),
    (b'{"id": "\xff\xfe caf\xe9"}\n', "not_utf8"),
    (b"\xff\xfe\x00{\x00\n", "not_utf8"),
])
def test_jsonl_broken_middle_line(tmp_path, name, bad, code):
    lines = jl(*GOOD[:2]) + [bad] + jl(*GOOD[2:])
    got = read(write(tmp_path / name, b"".join(lines)))
    assert summary(got) == [(1, GOOD[0]), (2, GOOD[1]), (3, code), (4, GOOD[2]), (5, GOOD[3]), (6, GOOD[4])]
    assert got[2].value is None and got[2].error
    assert raw_text(got[2].raw) == raw_text(bad)


@pytest.mark.parametrize("name", ["log.jsonl", "log.json"])
def test_jsonl_broken_first_line(tmp_path, name):
    lines = [b'{"id": "x", "amount": 4\n'] + jl(*GOOD[:3])
    got = read(write(tmp_path / name, b"".join(lines)))
    assert [r.line for r in got] == [1, 2, 3, 4]
    assert got[0].error_code in ("truncated", "invalid_json")
    assert [r.value for r in got[1:]] == GOOD[:3]


def test_jsonl_every_cut_of_a_line_is_truncated(tmp_path):
    line = json.dumps({"id": "cut", "s": "a\\\"é\u20ac\n", "n": -12.5e-3, "t": True, "f": False, "z": None,
                       "o": {"k": [1, 2, {"x": "y"}]}, "e": [], "u": "\u00e9"})
    for cut in range(1, len(line)):
        got = read(write(tmp_path / "cut.jsonl", (json.dumps(GOOD[0]) + "\n" + line[:cut] + "\n").encode()))
        assert summary(got) == [(1, GOOD[0]), (2, "truncated")], line[:cut]


def pretty_array(recs, broken: dict[int, str] | None = None) -> tuple[str, list[int]]:
    """A json.dump(indent=2)-style array; element i replaced by broken[i] when given."""
    parts, lines, line = ["[\n"], [], 2
    for i, r in enumerate(recs):
        body = textwrap.indent((broken or {}).get(i) or json.dumps(r, indent=2), "  ")
        lines.append(line)
        parts.append(body + (",\n" if i < len(recs) - 1 else "\n"))
        line += body.count("\n") + 1
    parts.append("]\n")
    return "".join(parts), lines


@pytest.mark.parametrize("broken, code", [
    ('{\n  "id": "bad",,\n  "nested": {\n    "a": [1, {"b": null}]\n  }\n}', "invalid_json"),
    ('{\n  "id": "bad",\n  "nested": {\n    "a": [1, {"b": nul}]\n  }\n}', "invalid_json"),
    ('{\n  "id": "bad",\n  "nested": {\n    "a": [1, {"b": null}]\n  }\n', "invalid_json"),  # no closing brace
    ('{\n  "id": "bad",\n  "nested": {\n    "a": [1, {"b": null}\n  }\n}', "invalid_json"),
    ('{\n  "id": "bad\n  "nested": {\n    "a": [1, {"b": null}]\n  }\n}', "invalid_json"),
    ('{\n  "id": "\udcff",\n  "nested": {\n    "a": [1, {"b": null}]\n  }\n}', "not_utf8"),
    ('{\n  "id": "\udcff",\n  "nested": {\n    "a": [1, {"b": null},]\n  }\n}', "not_utf8"),
])
def test_array_with_a_broken_element_in_the_middle(tmp_path, broken, code):
    text, lines = pretty_array(GOOD, {2: broken})
    data = text.encode("utf-8", "surrogateescape")
    for compression in ("none", "gz"):
        got = read(write(tmp_path / "log.json", data, compression))
        # the nested objects of the broken element are never taken for records
        assert summary(got) == [(lines[0], GOOD[0]), (lines[1], GOOD[1]), (lines[2], code),
                                (lines[3], GOOD[3]), (lines[4], GOOD[4])]


def test_array_one_element_per_line_with_a_broken_one(tmp_path):
    text = "[" + ",\n".join([json.dumps(GOOD[0]), json.dumps(GOOD[1]), '{"id": "bad", "amount": }',
                            json.dumps(GOOD[2])]) + "]\n"
    got = read(write(tmp_path / "log.json", text.encode()))
    assert summary(got) == [(1, GOOD[0]), (2, GOOD[1]), (3, "invalid_json"), (4, GOOD[2])]


def test_concatenated_pretty_objects_with_a_cut_one(tmp_path):
    objs = [json.dumps(r, indent=2) for r in GOOD[:3]]
    cut = objs[1][: objs[1].rfind("}")]  # the second lost its closing brace
    text = objs[0] + "\n" + cut + "\n" + objs[2] + "\n"
    starts = [1, 1 + objs[0].count("\n") + 1]
    starts.append(starts[1] + cut.count("\n") + 1)
    got = read(write(tmp_path / "log.json", text.encode()))
    assert summary(got) == [(starts[0], GOOD[0]), (starts[1], "invalid_json"), (starts[2], GOOD[2])]


def test_file_cut_inside_an_array_at_every_point(tmp_path):
    last = {"id": "last", "s": "ab\\\"\u00e9", "n": -1.5e-3, "t": True, "f": False, "z": None,
            "o": {"k": [10, {"x": "y"}]}}
    text, lines = pretty_array(GOOD[:2] + [last])
    start = text.rindex("{", 0, text.index('"id": "last"'))
    for cut in range(start + 1, text.rindex("}") + 1):
        got = read(write(tmp_path / "cut.json", text[:cut].encode()))
        assert summary(got) == [(lines[0], GOOD[0]), (lines[1], GOOD[1]), (lines[2], "truncated")], text[start:cut]


def test_file_cut_right_after_an_element(tmp_path):
    text, lines = pretty_array(GOOD[:3])
    cut = text.rindex("}") + 1
    for end in (cut, cut + 1):
        got = read(write(tmp_path / "cut.json", text[:end].encode()))
        assert summary(got) == [(lines[0], GOOD[0]), (lines[1], GOOD[1]), (lines[2], GOOD[2])]


@pytest.mark.parametrize("name", ["empty.json", "empty.jsonl", "empty.csv", "empty.log"])
@pytest.mark.parametrize("data", [b"", b"   \n\n\t\r\n  ", codecs.BOM_UTF8, codecs.BOM_UTF16_LE + " \n".encode("utf-16-le")])
@pytest.mark.parametrize("compression", ["none", "gz"])
def test_empty_and_whitespace_files_have_no_records(tmp_path, name, data, compression):
    assert read(write(tmp_path / name, data, compression)) == []


def test_empty_array_and_csv_header_only(tmp_path):
    assert read(write(tmp_path / "a.json", b"[]\n")) == []
    assert read(write(tmp_path / "a.json", b"[\n]\n")) == []
    assert read(write(tmp_path / "a.csv", b"id,amount\r\n")) == []


def test_null_and_scalar_elements_do_not_stop_the_reader(tmp_path):
    got = read(write(tmp_path / "a.json", b'[{"id": 1}, null, 2, "x", [3], {"id": 4}]'))
    assert [r.value for r in got] == [{"id": 1}, None, 2, "x", [3], {"id": 4}]
    assert [r.error for r in got] == [None] * 6


def test_csv_row_with_too_many_fields(tmp_path):
    text = "id,amount,status\n1,10,ok\n2,20,ok,EXTRA\n3,30,ok\n4,40\n"
    got = read(write(tmp_path / "a.csv", text.encode()))
    assert summary(got) == [(2, {"id": "1", "amount": "10", "status": "ok"}), (3, "invalid_csv"),
                            (4, {"id": "3", "amount": "30", "status": "ok"}), (5, {"id": "4", "amount": "40"})]
    assert "4 fields" in got[1].error and raw_text(got[1].raw) == "2,20,ok,EXTRA"


def test_csv_with_a_nul_byte(tmp_path):
    data = b"id,amount\n1,10\n2,2\x000\n3,30\n\x00\x00\x00\x00\n4,40\n"
    got = read(write(tmp_path / "a.csv", data))
    assert summary(got) == [(2, {"id": "1", "amount": "10"}), (3, "invalid_csv"), (4, {"id": "3", "amount": "30"}),
                            (5, "invalid_csv"), (6, {"id": "4", "amount": "40"})]


def test_csv_not_utf8_row_and_quoted_newlines(tmp_path):
    data = b'id,note\n1,"a\nb"\n2,caf\xe9\n3,"x,y"\n'
    got = read(write(tmp_path / "a.csv", data))
    assert summary(got) == [(2, {"id": "1", "note": "a\nb"}), (4, "not_utf8"), (5, {"id": "3", "note": "x,y"})]
    assert "0xe9" in got[1].error


GARBAGE = bytes(range(256)) * 8 + b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 50


@pytest.mark.parametrize("name", ["blob.json", "blob.jsonl", "blob.csv", "blob.bin"])
def test_binary_garbage_gives_only_errors(tmp_path, name):
    got = read(write(tmp_path / name, GARBAGE))
    assert got
    assert all(r.error and r.value is None and r.error_code in ERROR_CODES for r in got)
    assert [r.line for r in got] == sorted(r.line for r in got)


def test_garbage_between_good_records(tmp_path):
    data = b"".join(jl(GOOD[0])) + GARBAGE[:200] + b"\n" + b"".join(jl(GOOD[1]))
    for name in ("mixed.jsonl", "mixed.json"):
        got = read(write(tmp_path / name, data))
        assert got[0] == (1, GOOD[0], got[0].raw, None, None)
        assert got[-1].value == GOOD[1] and got[-1].line == data.count(b"\n")
        assert all(r.error_code in ERROR_CODES for r in got[1:-1]) and len(got) > 2


def test_broken_gzip_raises_a_read_error(tmp_path):
    data = gzip.compress(b"".join(jl(*GOOD)) * 2000)
    path = write(tmp_path / "cut.jsonl.gz", data[: len(data) // 2])
    seen = []
    with pytest.raises((EOFError, OSError, zlib.error)):
        for rec in read_records(path):
            seen.append(rec)
    assert seen and all(r.error is None for r in seen)
    with pytest.raises((EOFError, OSError, zlib.error)):
        read(write(tmp_path / "fake.json", b"\x1f\x8bnot really gzip"))


def test_long_first_line_in_a_json_named_file(tmp_path):
    recs = [{"id": i, "payload": "x" * 6000} for i in range(3)]
    got = read(write(tmp_path / "big.json", b"".join(jl(*recs))))
    assert summary(got) == [(1, recs[0]), (2, recs[1]), (3, recs[2])]


def test_sniff_format():
    assert sniff_format(Path("a.csv.gz"), b"{") == "csv"
    assert sniff_format(Path("a.NDJSON"), b"") == "jsonl"
    assert sniff_format(Path("a.log"), b"  [") == "json"
    assert sniff_format(Path("a.log"), b"id,amount") == "csv"
    assert sniff_format(Path("a.json"), b"") == "json"


def test_raw_text_caps_and_escapes():
    assert raw_text(b'{"a": "\xff"}\r\n') == '{"a": "\\xff"}'
    long = raw_text("x" * (readers.MAX_RAW_CHARS + 10))
    assert long.startswith("x" * readers.MAX_RAW_CHARS) and "cut at" in long


# --- chunk boundaries ------------------------------------------------------------

def test_tokens_across_the_real_chunk_boundary(tmp_path):
    """Strings, literals, numbers, escapes and multi-byte characters cut by the 1 MiB read."""
    tokens = ['"' + "é" * 40 + '"', "true", "false", "null", "-12345.678e-3", '"\\u00e9\\n\\"x"']
    for token in tokens:
        for shift in range(-4, 5):
            head = '[{"pad": "'
            pad = readers.CHUNK - len(head.encode()) - len('"}, {"v": ') - 2 + shift
            text = head + "p" * pad + '"}, {"v": ' + token + '}, {"after": 1}]'
            got = read(write(tmp_path / "b.json", text.encode()))
            assert [r.value for r in got] == [{"pad": "p" * pad}, {"v": json.loads(token)}, {"after": 1}]
            assert all(r.error is None for r in got)


def test_big_arrays_lose_nothing(tmp_path):
    recs = [{"i": i, "s": "é" * (i % 700), "t": i % 3 == 0} for i in range(4000)]
    for text in (json.dumps(recs, ensure_ascii=False), json.dumps(recs, indent=1, ensure_ascii=False)):
        got = read(write(tmp_path / "big.json", text.encode()))
        assert [r.error for r in got] == [None] * len(recs)
        assert [r.value for r in got] == recs


chars = st.characters(exclude_categories=("Cs",))  # no lone surrogates: not encodable as UTF-8
json_scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(chars, max_size=12))
json_values = json_scalars | st.lists(json_scalars, max_size=3) | st.dictionaries(st.text(chars, max_size=6),
                                                                                   json_scalars, max_size=3)
json_dicts = st.dictionaries(st.text(chars, max_size=10), json_values, max_size=5)


@settings(max_examples=150, deadline=None)
@given(recs=st.lists(json_dicts, max_size=8), layout=st.sampled_from(["jsonl", "jsonl_named_json", "array",
                                                                      "array_pretty", "concat_pretty"]),
       gz=st.booleans(), ascii_only=st.booleans(), chunk=st.sampled_from([None, 16, 17, 64, 1000]))
def test_property_records_come_back_in_order(recs, layout, gz, ascii_only, chunk):
    dumps = lambda v, **kw: json.dumps(v, ensure_ascii=ascii_only, **kw)  # noqa: E731
    if layout.startswith("jsonl"):
        text = "".join(dumps(r) + "\n" for r in recs)
    elif layout == "array":
        text = dumps(recs)
    elif layout == "array_pretty":
        text = dumps(recs, indent=2)
    else:
        text = "\n".join(dumps(r, indent=2) for r in recs)
    name = "log.jsonl" if layout == "jsonl" else "log.json"
    old = readers.CHUNK
    if chunk:
        readers.CHUNK = chunk  # tiny reads put every kind of token across a boundary
    try:
        with tempfile.TemporaryDirectory() as d:
            got = read(write(Path(d) / name, text.encode(), "gz" if gz else "none"))
    finally:
        readers.CHUNK = old
    assert [r.error for r in got] == [None] * len(recs)
    assert [r.value for r in got] == recs
    if layout.startswith("jsonl"):
        assert [r.line for r in got] == list(range(1, len(recs) + 1))


# --- memory ----------------------------------------------------------------------

N_BIG = 150_000


@pytest.fixture(scope="module")
def big_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("big")
    # few fields (tracemalloc makes every allocation slow) but long lines: 25 MB, ~90 MB once all parsed
    line = '{"id": "txn_%06d", "note": "' + "n" * 120 + '"}'
    lines = [line % i for i in range(N_BIG)]
    (d / "big.jsonl").write_text("\n".join(lines) + "\n")
    (d / "big.json").write_text("[\n" + ",\n".join(lines) + "\n]\n")
    return d


@pytest.mark.parametrize("name", ["big.jsonl", "big.json"])
def test_memory_stays_flat(big_files, name):
    path = big_files / name
    assert path.stat().st_size > 20_000_000
    # the cyclic GC off: faster under tracemalloc, and stricter (only refcounting frees records)
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        n = errors = 0
        last = None
        for rec in read_records(path):
            n += 1
            errors += rec.error is not None
            last = rec
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        gc.enable()
    assert (n, errors) == (N_BIG, 0)
    assert last.value["id"] == f"txn_{N_BIG - 1:06d}"
    assert last.line == (N_BIG if name == "big.jsonl" else N_BIG + 1)
    assert peak < 30_000_000, f"peak {peak / 1e6:.1f} MB"


# --- discover --------------------------------------------------------------------

def test_discover_walks_a_tree(tmp_path):
    root = tmp_path / "logs"
    names = ["a.json", "b.jsonl.gz", "c.csv", "d.ndjson", "e.JSON.GZ", "README.md", "notes.txt", "incidents.json",
             "webhook-secrets.json", ".hidden.json", ".git/objects/x.json", ".cache/y.jsonl", "sub/z.json",
             "sub/incidents.json.gz", "sub/data.csv.gz", "sub/zdeeper/w.jsonl", "sub/archive.tar.gz", "sub/.DS_Store"]
    for n in names:
        (root / n).parent.mkdir(parents=True, exist_ok=True)
        (root / n).write_text("{}\n")
    found = discover([str(root)])
    rel = lambda ps: [p.relative_to(root).as_posix() for p in ps]  # noqa: E731
    assert rel(found.files) == ["a.json", "b.jsonl.gz", "c.csv", "d.ndjson", "e.JSON.GZ", "sub/data.csv.gz",
                                "sub/z.json", "sub/zdeeper/w.jsonl"]
    assert sorted(rel(found.skipped)) == sorted(["README.md", "notes.txt", "incidents.json", "webhook-secrets.json",
                                                 "sub/incidents.json.gz", "sub/archive.tar.gz"])
    assert found.missing == []
    assert not any(part.startswith(".") for p in found.files + found.skipped for part in p.relative_to(root).parts)


def test_discover_named_files_and_missing_paths(tmp_path):
    (tmp_path / "README.md").write_text("x")
    (tmp_path / "incidents.json").write_text("[]")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.json").write_text("{}")
    paths = [str(tmp_path / "README.md"), str(tmp_path / "nope.json"), str(tmp_path / "d"),
             str(tmp_path / "incidents.json"), str(tmp_path / "gone")]
    found = discover(paths)
    assert found.files == [tmp_path / "README.md", tmp_path / "d" / "x.json"]
    assert found.skipped == [tmp_path / "incidents.json"]  # simulate's ground truth, even named
    assert found.missing == [str(tmp_path / "nope.json"), str(tmp_path / "gone")]
    assert discover([]) == readers.Discovered([], [], [])


def test_pretty_documents_after_a_compact_first_line(tmp_path):
    """A callback log that appends bodies as received: compact and pretty-printed mixed."""
    pretty = json.dumps(GOOD[1], indent=2)
    text = (json.dumps(GOOD[0]) + "\n" + pretty + "\n" + json.dumps(GOOD[2]) + "\n"
            + '{"id": "cut", "nested": {\n' + json.dumps(GOOD[3]) + "\n" + pretty + "\n")
    p2 = 2 + pretty.count("\n") + 1
    got = read(write(tmp_path / "callbacks.json", text.encode()))
    assert summary(got) == [(1, GOOD[0]), (2, GOOD[1]), (p2, GOOD[2]), (p2 + 1, "truncated"), (p2 + 2, GOOD[3]),
                            (p2 + 3, GOOD[1])]


def test_many_cut_lines_read_in_linear_time(tmp_path):
    """A logger that cuts every line at a fixed length: each line is one truncated record."""
    line = json.dumps({"id": "x", "nested": {"a": {"b": ["c" * 100]}}})[:30] + "{\n"
    got = read(write(tmp_path / "cut.jsonl", (line * 20_000).encode()))
    assert len(got) == 20_000 and {r.error_code for r in got} == {"truncated"}
    assert [r.line for r in got[:3]] == [1, 2, 3] and got[-1].line == 20_000


def test_documents_read_values_as_json_lines_do(tmp_path):
    """Big integers and lone surrogates: what orjson (and so the store) can take."""
    recs = ['{"id": "big", "n": 123456789012345678901234567890, "m": 9223372036854775807}',
            '{"id": "lone", "s": "ab\\ud800"}',
            '{"id": "pair", "s": "\\ud83d\\ude00", "cid": "ws_CO_20092025115007849757597007"}']
    expected = [(1, {"id": "big", "n": 1.2345678901234568e29, "m": 9223372036854775807}), (2, "invalid_json"),
                (3, {"id": "pair", "s": "\U0001F600", "cid": "ws_CO_20092025115007849757597007"})]
    jsonl = "".join(r + "\n" for r in recs)
    assert summary(read(write(tmp_path / "a.jsonl", jsonl.encode()))) == expected
    assert summary(read(write(tmp_path / "b.json", ("[" + ",\n".join(recs) + "]").encode()))) == expected
    pretty = "\n".join(json.dumps(json.loads(r), indent=2) for r in recs[1:])
    got = read(write(tmp_path / "c.json", (recs[0] + "\n" + pretty + "\n").encode()))
    assert [r.error_code for r in got] == [None, "invalid_json", None]
