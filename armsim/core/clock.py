"""The simulated clock: real time by default; it can be frozen, advanced, set and sped up."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any


class SimClock:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._anchor_real = time.time()
        self._anchor_sim = self._anchor_real
        self._speed = 1.0

    def now_ts(self) -> float:
        with self._lock:
            return self._anchor_sim + (time.time() - self._anchor_real) * self._speed

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.now_ts(), dt.UTC)

    def _rebase(self) -> None:
        real = time.time()
        self._anchor_sim += (real - self._anchor_real) * self._speed
        self._anchor_real = real

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._rebase()
            self._anchor_sim += seconds

    def set(self, when: dt.datetime) -> None:
        with self._lock:
            self._rebase()
            if when.timestamp() < self._anchor_sim:
                raise ValueError("the clock only moves forward")
            self._anchor_sim = when.timestamp()

    def set_speed(self, speed: float) -> None:
        if speed < 0:
            raise ValueError("speed must be 0 (frozen) or more")
        with self._lock:
            self._rebase()
            self._speed = speed

    def describe(self) -> dict[str, Any]:
        return {"now": iso(self.now()), "speed": self._speed}

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            self._rebase()
            return {"sim": self._anchor_sim, "speed": self._speed}

    def load(self, data: dict[str, Any]) -> None:
        with self._lock:
            self._anchor_real = time.time()
            self._anchor_sim = max(float(data.get("sim", self._anchor_real)), self._anchor_real)
            self._speed = float(data.get("speed", 1.0))


def iso(value: dt.datetime) -> str:
    """ARM's timestamp format: UTC with seven fractional digits and a Z."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def parse_iso(value: str) -> dt.datetime:
    text = value.strip().replace("Z", "+00:00")
    if "." in text:
        head, _, tail = text.partition(".")
        digits = "".join(ch for ch in tail if ch.isdigit())
        rest = tail[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest}"
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed
