"""A process that commits the loader's batches, so the database's work runs on
another core while the next batch is parsed (threads would fight over the GIL).

It receives each batch as the changes it makes, plans them into statements, runs
them in one transaction, and answers with the batch number once committed. It holds
the store's load lock for its whole life: if the loading process is killed, the
batches the writer has already received still commit, in order, and the next load
waits until they have. Batches still queued in the loading process die with it: the
store then holds a prefix of the load, and running it again completes it.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import queue
import threading
from multiprocessing.reduction import ForkingPickler

CACHE_KIB = 65_536  # the writer's SQLite page cache: the store's indexes stay in memory (measured: -20% CPU at 1M rows)


class WriterError(RuntimeError):
    """The writer could not commit a batch; the message is the database's reason."""


def _larger_cache(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    cur.close()


def _serve(url: str, conn) -> None:
    import signal

    # Ctrl-C reaches the whole process group; the loader decides when to stop, and
    # the batch already handed over still commits.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from sqlalchemy import event

    from mpesa_ops.ingest.db import error_reason, make_engine
    from mpesa_ops.ingest.loader import GC_EVERY, StoreLock, write

    try:
        engine = make_engine(url)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _larger_cache)
        lock = StoreLock(engine)
    except Exception as exc:  # reported to the loader, which raises it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None))
    gc.disable()  # as in the loader: each batch's rows are acyclic, freed by reference counting
    try:
        while True:
            try:
                msg = conn.recv()
            except EOFError:  # the loader is gone: nothing more will come
                break
            if msg is None:
                break
            no, changes = msg
            try:
                with engine.begin() as db:
                    write(db, changes)
            except Exception as exc:
                conn.send(("error", f"{type(exc).__name__}: {error_reason(exc)}"))
                break
            conn.send(("ok", no))
            if no % GC_EVERY == GC_EVERY - 1:
                gc.collect()
    finally:
        lock.release()
        engine.dispose()


class WriterProcess:
    def __init__(self, url: str):
        ctx = mp.get_context("spawn")  # a clean interpreter: no inherited pools, threads or locks
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(url, child), name="mpesa-ops-writer", daemon=True)
        self._proc.start()
        child.close()
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()
        self._feeder = threading.Thread(target=self._feed, name="mpesa-ops-writer-feed", daemon=True)
        self._feeder.start()
        try:
            self._expect("ready")
        except BaseException:
            self.close()
            raise

    def _feed(self) -> None:
        """Send the batches in order. A send waits while the writer is busy with the
        batch before; here that wait releases the GIL, so the loader goes on reading."""
        while (data := self._outbox.get()) is not None:
            try:
                self._conn.send_bytes(data)
            except OSError:  # the writer is gone: committed() says why
                return

    def _expect(self, what: str, timeout: float | None = None):
        if timeout is not None and not self._conn.poll(timeout):
            raise WriterError(f"the writer did not answer within {timeout:.0f} s")
        try:
            kind, value = self._conn.recv()
        except EOFError:
            raise WriterError(f"the writer process ended unexpectedly (exit code {self._proc.exitcode})") from None
        if kind == "error":
            raise WriterError(value)
        assert kind == what, (kind, what)
        return value

    def submit(self, no: int, changes) -> None:
        self._outbox.put(ForkingPickler.dumps((no, changes)))

    def committed(self, timeout: float | None = None) -> int:
        """Wait for the next batch to commit; its number."""
        return self._expect("ok", timeout)

    def close(self) -> None:
        self._outbox.put(None)
        self._feeder.join(timeout=60)
        if not self._feeder.is_alive():  # else a send is stuck: the writer is killed below
            try:
                self._conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            self._proc.join(timeout=60)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(timeout=5)
            self._feeder.join(timeout=5)  # its stuck send fails now that the writer is gone
        self._conn.close()
