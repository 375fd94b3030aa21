"""One loader at a time per store: a second one waits until the first has finished."""

from __future__ import annotations

import threading

from mpesa_ops.ingest.loader import Item, Loader
from mpesa_ops.ingest.normalise import normalise


def item(txn_id: str) -> Item:
    return Item("test", 1, normalise({"id": txn_id, "created_at": "2026-10-01T10:00:00Z", "status": "pending"}))


def test_a_second_loader_waits_for_the_first(engine):
    first = Loader(engine, "ingest", "first")
    first.load_batch([item("txn_a")])  # from here it holds the store's lock
    finished = threading.Event()

    def second():
        loader = Loader(engine, "ingest", "second")
        loader.load_batch([item("txn_b")])
        loader.finish()
        finished.set()

    thread = threading.Thread(target=second)
    thread.start()
    try:
        assert not finished.wait(1.0), "the second loader did not wait for the first"
        first.finish()
        assert finished.wait(30), "the second loader did not go on once the first finished"
    finally:
        if not finished.is_set():
            first.finish()
        thread.join(30)
