"""Progress of long runs, on rank 0 only: a tqdm bar on a terminal, sparse lines in a log.

When stderr is not a terminal (a CI job, a batch system's log file) a bar would
write a line per update; :class:`Progress` writes instead one plain line
``desc: 40% t=1.600/4.000 (12 s)`` at every further 10% of the total, or after
30 s without one, and a last line when it closes.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

LOG_EVERY_FRACTION = 0.1   # a log line at every further 10% ...
LOG_EVERY_SECONDS = 30.0   # ... or after 30 s without one


class Progress:
    """Advance by time steps (or any count); shows ``label=done/total``."""

    def __init__(self, total: float, desc: str, enabled: bool = True, start: float = 0.0, label: str = "t",
                 stream=None):
        self.bar = None
        self.stream = None
        self.fmt = ".3f" if label == "t" else ".0f"
        self.total, self.done, self.desc, self.label = float(total), float(start), desc, label
        if not enabled:
            return
        stream = sys.stderr if stream is None else stream
        if stream.isatty():
            self.bar = tqdm(total=round(total, 6), initial=round(start, 6), desc=desc, unit="t",
                            file=stream, leave=False, dynamic_ncols=True,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| " + label + "={n:" + self.fmt + "}/{total:"
                            + self.fmt + "} [{elapsed}<{remaining}]")
        else:
            self.stream = stream
            self.t0 = self.last_time = time.monotonic()
            self.last_fraction = self._fraction()
            self.last_status = ""

    def _fraction(self) -> float:
        return self.done / self.total if self.total > 0 else 1.0

    def _status(self) -> str:
        return f"{self.desc}: {100 * self._fraction():3.0f}% {self.label}={self.done:{self.fmt}}/{self.total:{self.fmt}}"

    def _line(self) -> None:
        now = time.monotonic()
        self.last_status = self._status()
        print(f"{self.last_status} ({now - self.t0:.0f} s)", file=self.stream, flush=True)
        self.last_time, self.last_fraction = now, self._fraction()

    def update(self, dt: float) -> None:
        if self.bar is not None:
            self.bar.update(dt)
        elif self.stream is not None:
            self.done += dt
            if (self._fraction() - self.last_fraction >= LOG_EVERY_FRACTION - 1e-12
                    or time.monotonic() - self.last_time >= LOG_EVERY_SECONDS):
                self._line()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.stream is not None:
            if self._status() != self.last_status:  # the final state, unless the last line said it
                self._line()
            self.stream = None
