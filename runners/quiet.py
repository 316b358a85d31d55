"""Keeping Beam's worker processes quiet: their start-up log lines are hidden unless ``-v``.

The local runner's workers are processes of their own that write Beam's logging straight to
the standard error they inherit, before any setting of ours can reach them. While a job runs,
:class:`QuietWorkers` puts a pipe in place of file descriptor 2 and forwards what comes
through it, minus the lines Beam's loggers write (``INFO:root:``, ``WARNING:apache_beam...``);
everything else (tamis's own lines, progress) passes unchanged. A worker's error comes back
to the launcher, which prints it in one line; its traceback is hidden with Beam's lines.
"""

from __future__ import annotations

import os
import re
import sys
import threading

#: A log line of Beam's or of a worker's default logger, as Python's logging prints it.
NOISE = re.compile(rb"^(DEBUG|INFO|WARNING|ERROR|CRITICAL):(root|__main__|apache_beam[\w.]*|absl|"
                   rb"google[\w.]*|grpc[\w.]*):")
#: Lines that continue a noisy record: an indented line, or a traceback's own lines (a worker's
#: error reaches the user once, as tamis's one-line message).
CONTINUED = re.compile(rb"^([ \t]|Traceback \(most recent call last\)|During handling of|"
                       rb"The above exception|[A-Za-z_][\w.]*(Error|Exception|Exit)\b)")


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
                    if skipping and (not line.strip() or CONTINUED.match(line)):
                        continue  # blank lines inside a traceback go with it
                    skipping = False
                    os.write(out, line)
            if pending and not NOISE.match(pending):
                os.write(out, pending)
