"""Progress of long runs: a tqdm bar over simulated time, on rank 0 only."""

from __future__ import annotations

import sys

from tqdm import tqdm


class Progress:
    """Advance by time steps (or any count); shows ``label=done/total``."""

    def __init__(self, total: float, desc: str, enabled: bool = True, start: float = 0.0, label: str = "t"):
        self.bar = None
        fmt = ".3f" if label == "t" else ".0f"
        if enabled:
            self.bar = tqdm(total=round(total, 6), initial=round(start, 6), desc=desc, unit="t",
                            file=sys.stderr, leave=False, dynamic_ncols=True,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| " + label + "={n:" + fmt + "}/{total:" + fmt + "} [{elapsed}<{remaining}]")

    def update(self, dt: float) -> None:
        if self.bar is not None:
            self.bar.update(dt)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
