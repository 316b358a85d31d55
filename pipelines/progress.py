"""Progress of a long stage on the local runner: units done (embed: windows), their rate, and
the time left.

Workers are separate processes, so each :class:`ProgressWriter` keeps its own count in a small
file under a folder the launcher chose, rewritten at most once a second; the launcher's
:class:`ProgressMonitor` thread adds the files up and logs a line every few seconds. On other
runners the job's Beam counters (``docs_embedded``, ``windows_made``) show the work in the
runner's own UI.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid

log = logging.getLogger(__name__)


class ProgressWriter:
    """Counts done work in one worker; ``folder`` None turns it off."""

    def __init__(self, folder: str | None, stage: str) -> None:
        self.folder, self.stage = folder, stage
        self.done = 0
        self._last = 0.0
        self._path: str | None = None  # chosen in the worker that counts, not the launcher

    def add(self, n: int) -> None:
        self.done += n
        if self.folder and time.monotonic() - self._last >= 1.0:
            self.flush()

    def flush(self) -> None:
        if not self.folder:
            return
        if self._path is None:
            self._path = os.path.join(self.folder,
                                      f"{self.stage}-{os.getpid()}-{uuid.uuid4().hex}.json")
        tmp = self._path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"done": self.done}, f)
        os.replace(tmp, self._path)
        self._last = time.monotonic()


def read_done(folder: str, stage: str) -> int:
    total = 0
    for name in os.listdir(folder):
        if name.startswith(stage + "-") and name.endswith(".json"):
            try:
                with open(os.path.join(folder, name)) as f:
                    total += json.load(f)["done"]
            except (OSError, ValueError, KeyError):
                continue  # a file being replaced; counted next time
    return total


def eta(done: int, total: int | None, seconds: float, exact: bool = True) -> str:
    """``done / total units (rate/s, ETA)`` as a readable line; an estimated total says so."""
    rate = done / seconds if seconds > 0 else 0.0
    if total and rate > 0:
        left = max(0.0, (total - done) / rate)
        about = "" if exact else "~"
        return f"{done:,}/{about}{total:,} ({rate:,.1f}/s, ETA {about}{clock(left)})"
    return f"{done:,} ({rate:,.1f}/s)"


#: Where the stage that makes a job's units counts what it has read and made.
SEEN, MADE = "seen", "made"


def refined_total(folder: str, rows: int | None, estimate: int | None) -> tuple[int | None, bool]:
    """``(total, exact)`` of units made from rows (windows from documents): exact once every
    row has been seen, else the units made so far plus the rest at the rate seen so far."""
    seen, made = read_done(folder, SEEN), read_done(folder, MADE)
    if rows is None or not seen:
        return estimate, False
    if seen >= rows:
        return made, True
    return made + round((rows - seen) * made / seen), False


def clock(seconds: float) -> str:
    """A duration as ``1h05m`` or ``4m30s``."""
    minutes, s = divmod(int(round(seconds)), 60)
    h, m = divmod(minutes, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class ProgressMonitor(threading.Thread):
    """Logs ``label: done/total (rate, ETA)`` every ``every`` seconds until stopped."""

    def __init__(self, folder: str, stage: str, label: str, total: int | None,
                 every: float = 5.0, rows: int | None = None) -> None:
        super().__init__(daemon=True)
        self.folder, self.stage, self.label, self.total, self.every = (
            folder, stage, label, total, every)
        self.rows = rows  # when set, the total is refined from what the making stage counts
        self._stop_event = threading.Event()
        self._start = time.monotonic()

    def run(self) -> None:
        while not self._stop_event.wait(self.every):
            done = read_done(self.folder, self.stage)
            if done:
                total, exact = ((self.total, True) if self.rows is None
                                else refined_total(self.folder, self.rows, self.total))
                log.info("%s: %s", self.label, eta(done, total, time.monotonic() - self._start,
                                                     exact))

    def stop(self) -> None:
        self._stop_event.set()
