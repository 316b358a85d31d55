"""Keeping Beam's worker processes quiet: their start-up log lines are hidden unless ``-v``.

The local runner's workers are processes of their own that write Beam's logging straight to
the standard error they inherit, before any setting of ours can reach them. While a job runs,
:class:`QuietWorkers` puts a pipe in place of file descriptor 2 and forwards what comes
through it, minus the lines Beam's loggers write (``INFO:root:``, ``WARNING:apache_beam...``);
everything else (tamis's own lines, progress, a worker's traceback) passes unchanged.
"""

from __future__ import annotations

import os
import re
import sys
import threading

#: A log line of Beam's or of a worker's default logger, as Python's logging prints it.
NOISE = re.compile(rb"^(DEBUG|INFO|WARNING):(root|__main__|apache_beam[\w.]*|absl|"
                   rb"google[\w.]*|grpc[\w.]*):")


class QuietWorkers:
    """A context manager; does nothing when ``enabled`` is false or fd 2 cannot be replaced."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._saved: int | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> QuietWorkers:
        if not self.enabled:
            return self
        try:
            sys.stderr.flush()
            self._saved = os.dup(2)
            read, write = os.pipe()
            os.dup2(write, 2)
            os.close(write)
        except OSError:
            self._saved = None
            return self
        self._thread = threading.Thread(target=self._forward,
                                        args=(read, os.dup(self._saved)), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._saved is None:
            return
        sys.stderr.flush()
        os.dup2(self._saved, 2)  # the pipe's last writer here closes; workers have exited
        if self._thread is not None:
            self._thread.join(timeout=5)
        os.close(self._saved)
        self._saved = None

    @staticmethod
    def _forward(read: int, out: int) -> None:
        try:
            QuietWorkers._copy(read, out)
        except OSError:
            pass
        finally:
            os.close(out)

    @staticmethod
    def _copy(read: int, out: int) -> None:
        pending = b""
        skipping = False
        with os.fdopen(read, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                pending += chunk
                parts = re.split(rb"(?<=[\r\n])", pending)
                pending = parts.pop()  # an unfinished line waits for its end
                for line in parts:
                    if NOISE.match(line):
                        skipping = True  # a noisy record's continuation lines go with it
                        continue
                    if skipping and line[:1] in (b" ", b"\t") and line.strip():
                        continue
                    skipping = False
                    os.write(out, line)
            if pending and not NOISE.match(pending):
                os.write(out, pending)
