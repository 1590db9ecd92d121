"""Import worker processes started with the web service, restarted if they die."""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Sequence

log = logging.getLogger("sifc.supervisor")
RESTART_DELAY_S = 1.0
STOP_GRACE_S = 10.0


class WorkerSupervisor:
    """Keeps ``count`` worker processes alive until :meth:`stop`.

    ``command`` is the worker's command line (``sifc worker`` under ``sifc serve``), given by the
    caller: the domain does not know which face of it starts the workers.
    """

    def __init__(self, count: int, *, command: Sequence[str]) -> None:
        self.count = count
        self.command = list(command)
        self.processes: list[subprocess.Popen[bytes]] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="sifc-worker-supervisor", daemon=True)

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.command, stdin=subprocess.DEVNULL)

    def start(self) -> None:
        """Start the workers and the thread that restarts them."""
        if self.count <= 0:
            return
        self.processes = [self._spawn() for _ in range(self.count)]
        self._thread.start()

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            for i, process in enumerate(self.processes):
                if process.poll() is not None and not self._stopping.is_set():
                    log.warning("import worker %d exited (%s): restarting it", process.pid, process.returncode)
                    time.sleep(RESTART_DELAY_S)
                    self.processes[i] = self._spawn()

    def stop(self) -> None:
        """Ask the workers to finish their current job and stop; kill those that do not in time."""
        self._stopping.set()
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
