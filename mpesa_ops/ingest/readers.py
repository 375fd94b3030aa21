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
    """Files named directly are read whatever their name; folders are walked in
    sorted order for files with a log suffix (optionally .gz), hidden ones skipped."""
    files, skipped, missing = [], [], []
    for p in paths:
        path = Path(p)
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    f = Path(root) / name
                    if name.startswith("."):
                        continue
                    base = name[:-3] if name.endswith(".gz") else name
                    if base.lower().endswith(LOG_SUFFIXES) and base not in SKIPPED_NAMES:
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
        elif fmt == "jsonl" or _first_line_is_json(head):
            yield from _read_jsonl(stream)
        else:
            yield from _read_json_document(stream)


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
    for n, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            yield RawRecord(n, loads(line), line, None)
        except JSONDecodeError as exc:
            bad = _describe_bad_bytes(line)
            reason = bad or _json_reason(line, exc)
            code = "not_utf8" if bad else ("truncated" if "cut short" in reason else "invalid_json")
            yield RawRecord(n, None, line, reason, code)


def _json_reason(line: bytes, exc: Exception) -> str:
    text = line.rstrip(b"\r\n")
    if text.lstrip()[:1] in (b"{", b"[") and not text.rstrip().endswith((b"}", b"]")):
        return "invalid JSON: the line is cut short (truncated record)"
    msg = str(exc).split(":")[0]
    return f"invalid JSON: {msg}"


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
            self.text = self.text[self.pos:]
            self.pos = 0
        self.text += self._decoder.decode(chunk)
        return True

    def advance(self, end: int) -> str:
        span = self.text[self.pos:end]
        self.line += span.count("\n")
        self.pos = end
        return span

    def skip_space(self, extra: str = "") -> str | None:
        """Move past white space (and `extra` characters); the next character or None at the end."""
        while True:
            t, i = self.text, self.pos
            while i < len(t) and (t[i].isspace() or t[i] in extra):
                i += 1
            self.advance(i)
            if i < len(t):
                return t[i]
            if not self.fill():
                return None


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
        c = buf.skip_space("," if in_array else "")
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
                if exc.pos >= len(buf.text) - 1 and buf.fill():
                    continue
                if buf.eof and exc.pos >= len(buf.text) - 1:
                    span = buf.advance(len(buf.text))
                    yield RawRecord(start_line, None, span[:MAX_RAW_CHARS],
                                    "invalid JSON: the file ends inside this record (truncated)", "truncated")
                    return
                span = buf.advance(_resync(buf, exc.pos))
                yield RawRecord(start_line, None, span[:MAX_RAW_CHARS], f"invalid JSON: {exc.msg}", "invalid_json")
                value = None
                break
        if value is None:
            continue
        span = buf.advance(end)
        try:
            span.encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = exc.object[exc.start].encode("utf-8", "surrogateescape")[:1]
            yield RawRecord(start_line, None, span.encode("utf-8", "surrogateescape")[:MAX_RAW_CHARS],
                            f"not valid UTF-8 (byte 0x{bad.hex()})", "not_utf8")
            continue
        if isinstance(value, list) and not in_array:
            for item in value:  # a nested array at top level after another value
                yield RawRecord(start_line, item, orjson.dumps(item), None)
            continue
        yield RawRecord(start_line, value, span[:MAX_RAW_CHARS], None)


def _resync(buf: _TextBuffer, error_pos: int) -> int:
    """Where to pick up after a broken element: the next line that opens a record."""
    t = buf.text
    i = t.find("\n", max(error_pos, buf.pos))
    while True:
        while i != -1:
            j = i + 1
            while j < len(t) and t[j] in " \t\r":
                j += 1
            if j < len(t) and t[j] in "{]":
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
