"""Stream raw records out of log files: JSON Lines, JSON arrays or documents, CSV;
any of them gzip-compressed. Memory stays flat whatever the file size.

Each record comes out as a RawRecord: its line number (where it starts), the parsed
value (or None), its raw text for keeping, and an error when it could not be parsed.
A broken record never stops the file: the reader resynchronises and goes on.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator, NamedTuple

import orjson

LOG_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv")
SKIPPED_NAMES = ("incidents.json", "webhook-secrets.json")  # simulate's ground truth, not logs
MAX_RAW_CHARS = 65_536
CHUNK = 1 << 20

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


class RawRecord(NamedTuple):
    line: int
    value: object
    raw: bytes | str
    error: str | None  # why the record could not be parsed, in words
    error_code: str | None = None  # invalid_json | truncated | not_utf8 | invalid_csv


@dataclass
class Discovered:
    files: list[Path]
    skipped: list[Path]
    missing: list[str]


def discover(paths: list[str]) -> Discovered:
    """Files named directly are read whatever their name, but for simulate's ground
    truth and secrets (`ingest logs/*` must not store the secrets as rejected records);
    folders are walked in sorted order for files with a log suffix (optionally .gz),
    hidden ones skipped."""
    files, skipped, missing = [], [], []
    for p in paths:
        path = Path(p)
        if path.is_file():
            (skipped if path.name.lower() in SKIPPED_NAMES else files).append(path)
        elif path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    f = Path(root) / name
                    if name.startswith("."):
                        continue
                    base = name.lower()
                    base = base[:-3] if base.endswith(".gz") else base
                    if base.endswith(LOG_SUFFIXES) and base not in SKIPPED_NAMES:
                        files.append(f)
                    else:
                        skipped.append(f)
        else:
            missing.append(p)
    return Discovered(files, skipped, missing)


def _open_binary(path: Path) -> IO[bytes]:
    """A peekable byte stream of the file, decompressed when it is gzip (by its magic bytes)."""
    f = open(path, "rb")
    if f.peek(2)[:2] == b"\x1f\x8b":
        f.close()
        return gzip.open(path, "rb")
    return f


def _strip_bom(stream: IO[bytes]) -> IO[bytes]:
    """A peekable UTF-8 stream positioned after any BOM; UTF-16 is re-encoded to UTF-8."""
    head = stream.peek(4)[:4]
    if head.startswith(codecs.BOM_UTF8):
        stream.read(3)
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = io.TextIOWrapper(stream, encoding="utf-16", newline="")
        return io.BufferedReader(_Utf8Recoder(text), CHUNK)
    return stream


class _Utf8Recoder(io.RawIOBase):
    """Bytes of UTF-8 read from a text stream (for UTF-16 files)."""

    def __init__(self, text: IO[str]):
        self._text, self._pending = text, b""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while len(self._pending) < len(b):
            chunk = self._text.read(CHUNK // 4)
            if not chunk:
                break
            self._pending += chunk.encode("utf-8")
        n = min(len(b), len(self._pending))
        b[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def sniff_format(path: Path, head: bytes) -> str:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    first = head.lstrip()[:1]
    if first in (b"[", b"{") or name.endswith(".json"):
        return "json"
    return "csv"


def read_records(path: Path) -> Iterator[RawRecord]:
    """Every record of one file, in order."""
    with _open_binary(path) as raw_stream:
        stream = _strip_bom(raw_stream)
        head = stream.peek(4096)[:4096]
        fmt = sniff_format(path, head)
        if fmt == "csv":
            yield from _read_csv(stream)
            return
        reader = _read_jsonl(stream) if fmt == "jsonl" or _first_line_is_json(head) else _read_json_document(stream)
        for rec in reader:
            value = rec.value
            items = page_items(value) if value.__class__ is dict and "data" in value else None
            if items is None:
                yield rec
                continue
            for item in items:
                yield RawRecord(rec.line, item, _item_text(item), None)


PAGE_KEYS = frozenset(("data", "next_cursor", "cursor", "next", "has_more", "meta", "links", "page", "total"))


def page_items(value) -> list | None:
    """The records of a saved gateway API page ({"data": [...], "next_cursor": ...}),
    or None when the value is not such a page."""
    if isinstance(value, dict) and isinstance(value.get("data"), list) and value.keys() <= PAGE_KEYS:
        return value["data"]
    return None


def _item_text(item) -> str:
    try:
        return orjson.dumps(item).decode()
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(item, ensure_ascii=True, default=str)


def _first_line_is_json(head: bytes) -> bool:
    for line in head.splitlines():
        if line.strip():
            if line.lstrip()[:1] != b"{":
                return False
            try:
                orjson.loads(line)
                return True
            except orjson.JSONDecodeError:
                return False
    return False


def _describe_bad_bytes(line: bytes) -> str | None:
    try:
        line.decode("utf-8")
        return None
    except UnicodeDecodeError as exc:
        return f"not valid UTF-8 (byte 0x{line[exc.start]:02x} at column {exc.start + 1})"


def _read_jsonl(stream: IO[bytes]) -> Iterator[RawRecord]:
    loads, JSONDecodeError = orjson.loads, orjson.JSONDecodeError
    lines, again = iter(stream), []  # again: lines read ahead by _multiline_record, to read once more
    n = 0
    while True:
        line = again.pop() if again else next(lines, None)
        if line is None:
            return
        n += 1
        if not line.strip():
            continue
        try:
            yield RawRecord(n, loads(line), line, None)
        except JSONDecodeError as exc:
            bad = _describe_bad_bytes(line)
            if bad:
                yield RawRecord(n, None, line, bad, "not_utf8")
                continue
            reason, code = _json_line_error(line, exc)
            if code == "truncated" and line.rstrip().endswith((b"{", b"[")):
                found = _multiline_record(n, line, lines, again)
                if found is not None:
                    rec, n_lines = found
                    n += n_lines
                    yield rec
                    continue
            yield RawRecord(n, None, line, reason, code)


def _multiline_record(n: int, line: bytes, lines: Iterator[bytes],
                      again: list[bytes]) -> tuple[RawRecord, int] | None:
    """A pretty-printed document among JSON lines (a log that appends bodies as received),
    opening with this line ("{" or "[" at its end): (the record, how many more lines it
    took). None when the line is really cut short; the lines read ahead are then put
    back in `again`. Bounded: the look-ahead stops at the next line that opens a record
    at column 0, and is only decoded at lines that could close the document."""
    text, taken = line.decode("utf-8"), []
    while len(taken) < 2000 and len(text) < MAX_RAW_CHARS:
        nxt = again.pop() if again else next(lines, None)
        if nxt is None:
            break
        taken.append(nxt)
        if nxt.startswith((b"{", b"[")):
            break
        try:
            text += nxt.decode("utf-8")
        except UnicodeDecodeError:
            break
        if not nxt.rstrip().endswith((b"}", b"]")):
            continue
        body = text.strip()
        try:
            value, end = _decoder.raw_decode(body)
        except json.JSONDecodeError as err:
            if _cut_short(err, body):
                continue
            break
        if end == len(body):
            if _RISKY.search(body) is not None:
                value, error = _as_orjson_reads(body)
                return RawRecord(n, value, text, error, error and "invalid_json"), len(taken)
            return RawRecord(n, value, text, None), len(taken)
        break
    again.extend(reversed(taken))
    return None


def _json_line_error(line: bytes, exc: Exception) -> tuple[str, str]:
    """(reason, code) of a JSON line orjson refused: "truncated" when the line ends
    inside the record (even one ending in "}" such as {"a": {"b": 1}), else "invalid_json"."""
    text = line.decode("utf-8").strip()
    try:
        _, end = _decoder.raw_decode(text)
    except json.JSONDecodeError as err:
        if _cut_short(err, text):
            return "invalid JSON: the line is cut short (truncated record)", "truncated"
        return f"invalid JSON: {err.msg} (column {err.pos + 1})", "invalid_json"
    if end < len(text):
        return f"invalid JSON: extra data after the record (column {end + 1})", "invalid_json"
    return f"invalid JSON: {str(exc).split(':')[0]}", "invalid_json"  # e.g. NaN, which orjson refuses


_LITERALS = ("true", "false", "null", "NaN", "Infinity", "-Infinity")
# a number, or a \uXXXX escape (the decoder reads a complete one on, looking for its surrogate pair)
_PARTIAL_TOKEN = re.compile(r"[-+.eE0-9]{1,4}|\\?u[0-9a-fA-F]{0,4}(\\u?[0-9a-fA-F]{0,4})?|\\")


def _cut_short(exc: json.JSONDecodeError, text: str) -> bool:
    """Whether a decode error comes from the text ending inside the value (so more
    text could complete it), rather than from a mistake in the text."""
    if exc.msg.startswith("Unterminated string"):  # reported at the string's start, not at the end
        return True
    if len(text) - exc.pos > 64:
        return False
    rest = text[exc.pos:].strip()
    return (not rest or any(lit.startswith(rest) for lit in _LITERALS)
            or _PARTIAL_TOKEN.fullmatch(rest) is not None)


class _TextBuffer:
    """A sliding window over a decoded stream, tracking line numbers."""

    def __init__(self, stream: IO[bytes]):
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self.text, self.pos, self.line, self.eof = "", 0, 1, False

    def fill(self) -> bool:
        if self.eof:
            return False
        chunk = self._stream.read(CHUNK)
        if not chunk:
            self.text += self._decoder.decode(b"", final=True)
            self.eof = True
            return False
        if self.pos > CHUNK:
            # drop what was read, keeping the start of the current line (its indentation guides _resync)
            floor = max(self.pos - 4096, 0)
            nl = self.text.rfind("\n", floor, self.pos)
            keep = nl + 1 if nl != -1 else floor
            self.text = self.text[keep:]
            self.pos -= keep
        self.text += self._decoder.decode(chunk)
        return True

    def advance(self, end: int) -> str:
        span = self.text[self.pos:end]
        self.line += span.count("\n")
        self.pos = end
        return span

    def skip_space(self, commas: bool = False) -> str | None:
        """Move past white space (and commas); the next character or None at the end."""
        space = _SPACE_COMMAS if commas else _SPACE
        while True:
            t, i = self.text, self.pos
            i = space.match(t, i).end()
            if i != self.pos:
                self.line += t.count("\n", self.pos, i)
                self.pos = i
            if i < len(t):
                return t[i]
            if not self.fill():
                return None


_SPACE = re.compile(r"\s*")  # \s is str.isspace(), as before
_SPACE_COMMAS = re.compile(r"[\s,]*")


_decoder = json.JSONDecoder()


def _read_json_document(stream: IO[bytes]) -> Iterator[RawRecord]:
    """A JSON array of records, a single record, or records one after another,
    possibly pretty-printed. Elements are decoded one at a time."""
    buf = _TextBuffer(stream)
    buf.fill()
    first = buf.skip_space()
    in_array = first == "["
    if in_array:
        buf.advance(buf.pos + 1)
    while True:
        c = buf.skip_space(commas=in_array)
        if c is None:
            return
        if in_array and c == "]":
            buf.advance(buf.pos + 1)
            in_array = False
            continue
        start_line = buf.line
        while True:
            try:
                value, end = _decoder.raw_decode(buf.text, buf.pos)
                break
            except json.JSONDecodeError as exc:
                # the buffer may end inside the record (a string, a literal, a number): read on and retry
                cut = _cut_short(exc, buf.text)
                if cut and buf.fill():
                    continue
                if cut:
                    span = buf.advance(len(buf.text))
                    yield RawRecord(start_line, None, span[:MAX_RAW_CHARS],
                                    "invalid JSON: the file ends inside this record (truncated)", "truncated")
                    return
                span = buf.advance(_resync(buf))
                if _is_utf8(span):
                    yield RawRecord(start_line, None, span[:MAX_RAW_CHARS], f"invalid JSON: {exc.msg}", "invalid_json")
                else:
                    yield _not_utf8(start_line, span)
                value = _BROKEN
                break
        if value is _BROKEN:  # a sentinel: a JSON null is a value like any other
            continue
        span = buf.advance(end)
        if not _is_utf8(span):
            yield _not_utf8(start_line, span)
            continue
        if _RISKY.search(span) is not None:
            value, error = _as_orjson_reads(span)
            if error:
                yield RawRecord(start_line, None, span[:MAX_RAW_CHARS], error, "invalid_json")
                continue
        if isinstance(value, list) and not in_array:
            for item in value:  # a nested array at top level after another value
                yield RawRecord(start_line, item, orjson.dumps(item), None)
            continue
        yield RawRecord(start_line, value, span[:MAX_RAW_CHARS], None)


_BROKEN = object()
_RISKY = re.compile(r"[0-9]{19}|\\u[dD][89abAB]")  # a big integer, or a \u escape of a surrogate


def _as_orjson_reads(span: str) -> tuple[object, str | None]:
    """The value of a _RISKY span as the JSON Lines reader (orjson) reads it: integers
    beyond 64 bits as floats, a lone surrogate (\ud800) an error. Python's json takes
    both, and then the record cannot be stored (the loader serialises with orjson)."""
    try:
        return orjson.loads(span), None
    except orjson.JSONDecodeError as exc:
        return None, f"invalid JSON: {str(exc).split(':')[0]}"


def _is_utf8(span: str) -> bool:
    if span.isascii():
        return True
    try:
        span.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _not_utf8(line: int, span: str) -> RawRecord:
    raw = span.encode("utf-8", "surrogateescape")
    bad = next(c for c in span if "\udc80" <= c <= "\udcff").encode("utf-8", "surrogateescape")
    return RawRecord(line, None, raw[:MAX_RAW_CHARS], f"not valid UTF-8 (byte 0x{bad.hex()})", "not_utf8")


def _resync(buf: _TextBuffer) -> int:
    """Where to pick up after a broken record starting at buf.pos: the next line after
    its first that opens a record ({) or closes the array (]) no deeper indented than
    it, so that nested objects of a pretty-printed record are not taken for records.
    Searching from the record's start, not from the error, keeps a record that follows
    a cut one (the error is then only seen at that next record's opening brace)."""
    t = buf.text
    indent = buf.pos - (t.rfind("\n", 0, buf.pos) + 1)
    i = t.find("\n", buf.pos)
    while True:
        while i != -1:
            j = i + 1
            while j < len(t) and t[j] in " \t\r":
                j += 1
            if j < len(t) and t[j] in "{]" and j - i - 1 <= indent:
                return j
            i = t.find("\n", j)
        if not buf.fill():
            return len(buf.text)
        t = buf.text
        i = t.find("\n", buf.pos)


def _read_csv(stream: IO[bytes]) -> Iterator[RawRecord]:
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline="")
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        yield RawRecord(1, None, "", f"invalid CSV header: {exc}", "invalid_csv")
        return
    raw = _csv_line(header)
    if not _is_utf8(raw) or "\x00" in raw:  # a binary file: its "column names" would be garbage keys
        yield RawRecord(1, None, raw.encode("utf-8", "surrogateescape")[:MAX_RAW_CHARS],
                        "invalid CSV header: binary data, not UTF-8 text",
                        "not_utf8" if not _is_utf8(raw) else "invalid_csv")
        return
    header = [h.strip() for h in header]
    prev_line = reader.line_num
    while True:
        start = prev_line + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            prev_line = reader.line_num
            yield RawRecord(start, None, "", f"invalid CSV: {exc}", "invalid_csv")
            continue
        prev_line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        raw = _csv_line(row)
        try:
            raw.encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = exc.object[exc.start].encode("utf-8", "surrogateescape")[:1]
            yield RawRecord(start, None, raw.encode("utf-8", "surrogateescape"), f"not valid UTF-8 (byte 0x{bad.hex()})",
                            "not_utf8")
            continue
        if "\x00" in raw:  # a NUL never belongs in a text log: a corrupt or zero-filled stretch
            yield RawRecord(start, None, raw, "the row contains a NUL byte", "invalid_csv")
            continue
        if len(row) > len(header):
            yield RawRecord(start, None, raw, f"the row has {len(row)} fields, the header has {len(header)}", "invalid_csv")
            continue
        yield RawRecord(start, {h: (v if v != "" else None) for h, v in zip(header, row)}, raw, None)


def _csv_line(row: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(row)
    return out.getvalue()


def raw_text(raw: bytes | str) -> str:
    """Raw record text to keep: undecodable bytes shown as \\xNN, capped in length."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "backslashreplace")
    raw = raw.rstrip("\r\n")
    if len(raw) > MAX_RAW_CHARS:
        raw = raw[:MAX_RAW_CHARS] + f"… [cut at {MAX_RAW_CHARS} characters]"
    return raw
