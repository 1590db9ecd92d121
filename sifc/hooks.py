"""A test seam of the concurrency tests, inert outside ``SIFC_ENVIRONMENT=test``.

Two real HTTP clients editing one record must be held together right after the ``If-Match``
check and before the write, so that both pass the check with the same version; the database
then lets exactly one of them close that version. ``SIFC_TEST_PRECONDITION_BARRIER=N`` makes
N requests wait for one another at that point (with a timeout, so that a lone request is never
held for ever).
"""

from __future__ import annotations

import os
import threading

_lock = threading.Lock()
_barriers: dict[int, threading.Barrier] = {}
TIMEOUT_S = 10.0


def after_precondition() -> None:
    """Called by every versioned write once its ``If-Match`` was found current."""
    if os.environ.get("SIFC_ENVIRONMENT") != "test":
        return
    parties = int(os.environ.get("SIFC_TEST_PRECONDITION_BARRIER", "0") or 0)
    if parties < 2:
        return
    with _lock:
        barrier = _barriers.setdefault(parties, threading.Barrier(parties))
    try:
        barrier.wait(timeout=TIMEOUT_S)
    except threading.BrokenBarrierError:
        barrier.reset()
