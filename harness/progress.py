"""The live progress display: one row per candidate (attempt, phase, gates so far, elapsed time).

With a terminal it is a rich Live table redrawn in place; without one (CI, pipes, --json) it prints one plain line
per change, so logs stay readable.
"""
from __future__ import annotations

import sys
import threading
import time

_ICON = {"pass": "ok", "fail": "FAIL", "error": "ERR"}


class Progress:
    def __init__(self, title: str, enabled: bool = True, stream=None):
        self.title = title
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.rows: dict[int, dict] = {}
        self.start = time.monotonic()
        self.lock = threading.Lock()
        self._live = None
        if enabled and self.stream.isatty():
            try:
                from rich.console import Console
                from rich.live import Live

                self._live = Live(self._table(), console=Console(file=self.stream), refresh_per_second=4,
                                  transient=False)
            except ImportError:  # rich is a dependency, but the display must never stop a run
                self._live = None

    def __enter__(self) -> "Progress":
        if self._live:
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._live:
            self._live.update(self._table())
            self._live.__exit__(*exc)

    def _table(self):
        from rich.table import Table

        t = Table(title=f"{self.title}  [{time.monotonic() - self.start:6.1f} s]")
        for col in ("cand", "attempt", "phase", "gates", "elapsed"):
            t.add_column(col)
        for c, r in sorted(self.rows.items()):
            gates = " ".join(f"{g}:{_ICON.get(s, s)}" for g, s in r.get("gates", []))
            t.add_row(str(c), str(r.get("attempt", "")), r.get("phase", ""), gates,
                      f"{time.monotonic() - r.get('t0', self.start):.1f} s")
        return t

    def update(self, cand: int, *, attempt: int | None = None, phase: str | None = None,
               gate: tuple[str, str] | None = None) -> None:
        if not self.enabled:
            return
        with self.lock:
            row = self.rows.setdefault(cand, {"t0": time.monotonic(), "gates": []})
            if attempt is not None and attempt != row.get("attempt"):
                row.update(attempt=attempt, gates=[], t0=time.monotonic())
            if phase is not None:
                row["phase"] = phase
            if gate is not None:
                row["gates"].append(gate)
            if self._live:
                self._live.update(self._table())
            else:
                what = f"gate {gate[0]}: {gate[1]}" if gate else (phase or "")
                print(f"[{time.monotonic() - self.start:7.1f}s] candidate {cand} attempt {row.get('attempt')}: {what}",
                      file=self.stream, flush=True)
