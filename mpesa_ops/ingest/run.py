"""Ingest files into the store: discover, read, normalise, load; report what happened."""

from __future__ import annotations

import gzip
import os
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from sqlalchemy import Engine

from mpesa_ops.ingest.loader import BATCH_SIZE, Counts, Item, Loader, now_utc
from mpesa_ops.ingest.normalise import Rejected, future_dated, normalise
from mpesa_ops.ingest.readers import discover, read_records

READ_ERRORS = (OSError, EOFError, gzip.BadGzipFile, zlib.error, UnicodeError)


def batch_size_setting() -> int | None:
    """MPESA_OPS_BATCH_SIZE: records per database transaction (default: the loader's)."""
    value = os.environ.get("MPESA_OPS_BATCH_SIZE")
    return int(value) if value and value.isascii() and value.isdigit() and int(value) > 0 else None


@dataclass
class IngestReport:
    counts: Counts
    run_id: int | None
    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)


def file_items(path: Path, progress: "_Progress | None" = None) -> Iterator[Item]:
    """Items of one file; a file that cannot be read to its end yields a rejected item
    saying so. Returns how many records it read (the value of `yield from`)."""
    source = str(path.resolve())
    now = now_utc()
    line = n = 0
    try:
        for rec in read_records(path):
            line = rec.line
            n += 1
            if progress is not None and not n & 1023:
                progress.advance(1024)
            if rec.error is not None:
                yield Item(source, rec.line, Rejected(rec.error, None, rec.error_code or "invalid_json"), rec.raw)
                continue
            normalised = normalise(rec.value)
            normalised = future_dated(normalised, now) or normalised
            if normalised.__class__ is Rejected:
                yield Item(source, rec.line, normalised, rec.raw)
            else:
                yield Item(source, rec.line, normalised)
    except READ_ERRORS as exc:
        yield Item(source, line + 1, Rejected(f"could not read the file past this point: {exc}", None, "read_error"), "")
    if progress is not None:
        progress.advance(n & 1023)
    return n


class _Progress:
    """A one-line progress display on a terminal's stderr; silent elsewhere."""

    def __init__(self, enabled: bool, total_files: int):
        self.enabled, self.total, self.file_no, self.records, self.name = enabled, total_files, 0, 0, ""

    def start_file(self, path: Path) -> None:
        self.file_no += 1
        self.name = path.name
        self._draw()

    def advance(self, n: int) -> None:
        self.records += n
        self._draw()

    def _draw(self) -> None:
        if self.enabled:
            sys.stderr.write(f"\r\033[Kfile {self.file_no}/{self.total} {self.name[:40]}  {self.records:,} records")
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def ingest_paths(engine: Engine, paths: list[str], *, progress: bool = False, batch_size: int | None = None,
                 command: str = "ingest") -> IngestReport:
    found = discover(paths)
    report = IngestReport(Counts(), None, [str(f) for f in found.files], [str(f) for f in found.skipped],
                          found.missing)
    if not found.files:
        return report
    loader = Loader(engine, command, " ".join(str(Path(p).resolve()) for p in paths),
                    batch_size or batch_size_setting() or BATCH_SIZE)
    report.run_id = loader.run_id
    bar = _Progress(progress, len(found.files))

    def items() -> Iterator[Item]:
        for path in found.files:
            bar.start_file(path)
            if (yield from file_items(path, bar)) == 0:
                report.empty.append(str(path))

    try:
        report.counts = loader.load(items())
    except BaseException as exc:
        bar.done()
        try:
            loader.finish("failed", f"{type(exc).__name__}: {exc}"[:2000])
        except Exception:
            pass  # the store itself failed; the caller reports the original error
        raise
    bar.done()
    loader.finish("ok")
    return report
