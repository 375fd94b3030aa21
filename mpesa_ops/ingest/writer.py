"""A process that commits the loader's batches, so the database's work runs on
another core while the next batch is parsed (threads would fight over the GIL).

It receives each batch as compiled statements with their parameters, runs them in
one transaction, and answers with the batch number once committed. It holds the
store's load lock for its whole life: if the loading process is killed, the batch
it already handed over still commits, and the next load waits until it has.
"""

from __future__ import annotations

import multiprocessing as mp


class WriterError(RuntimeError):
    """The writer could not commit a batch; the message is the database's reason."""


def _serve(url: str, conn) -> None:
    import signal

    # Ctrl-C reaches the whole process group; the loader decides when to stop, and
    # the batch already handed over still commits.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from mpesa_ops.ingest.db import error_reason, make_engine
    from mpesa_ops.ingest.loader import StoreLock, run_ops

    try:
        engine = make_engine(url)
        lock = StoreLock(engine)
    except Exception as exc:  # reported to the loader, which raises it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None))
    try:
        while True:
            try:
                msg = conn.recv()
            except EOFError:  # the loader is gone: nothing more will come
                break
            if msg is None:
                break
            no, ops = msg
            try:
                with engine.begin() as db:
                    run_ops(db, ops)
            except Exception as exc:
                conn.send(("error", f"{type(exc).__name__}: {error_reason(exc)}"))
                break
            conn.send(("ok", no))
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
        try:
            self._expect("ready")
        except BaseException:
            self.close()
            raise

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

    def submit(self, no: int, ops: list) -> None:
        self._conn.send((no, ops))

    def committed(self, timeout: float | None = None) -> int:
        """Wait for the next batch to commit; its number."""
        return self._expect("ok", timeout)

    def close(self) -> None:
        try:
            self._conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self._proc.join(timeout=60)
        if self._proc.is_alive():
            self._proc.kill()
        self._conn.close()
