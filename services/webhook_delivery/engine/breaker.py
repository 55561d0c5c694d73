"""A circuit breaker per subscription: after a run of failures its deliveries are held (not
attempted, and the hold is not an attempt) until the circuit half-opens and one probe decides."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

PROBE_WAIT = 1.0  # seconds the rest wait while a half-open circuit's probe is out


@dataclass(slots=True)
class _State:
    failures: int = 0
    open_until: float = 0.0
    probing: bool = False


class Breakers:
    def __init__(self, failures: int, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = max(1, failures)
        self.seconds = seconds
        self.clock = clock
        self._states: dict[uuid.UUID, _State] = {}

    def admit(self, sub_id: uuid.UUID) -> tuple[float, bool]:
        """(0, is_probe) when an attempt may go now; otherwise (seconds to hold it, False).
        A probe that does not happen after all must be `released`."""
        state = self._states.get(sub_id)
        if state is None or not state.open_until:
            return 0.0, False
        remaining = state.open_until - self.clock()
        if remaining > 0:
            return remaining, False
        if state.probing:
            return min(PROBE_WAIT, self.seconds), False
        state.probing = True  # half-open: this attempt is the probe
        return 0.0, True

    def is_open(self, sub_id: uuid.UUID) -> bool:
        """Whether its deliveries are being held (open, or half-open with the probe out), without
        making anything the probe."""
        state = self._states.get(sub_id)
        if state is None or not state.open_until:
            return False
        return state.probing or state.open_until > self.clock()

    def success(self, sub_id: uuid.UUID) -> None:
        self._states.pop(sub_id, None)

    def failure(self, sub_id: uuid.UUID) -> None:
        state = self._states.setdefault(sub_id, _State())
        state.failures += 1
        if state.probing or state.failures >= self.threshold:
            state.open_until = self.clock() + self.seconds
            state.probing = False

    def released(self, sub_id: uuid.UUID) -> None:
        """A probe that never reached the receiver: let another go."""
        state = self._states.get(sub_id)
        if state is not None:
            state.probing = False

    @property
    def open_count(self) -> int:
        now = self.clock()
        return sum(1 for s in self._states.values() if s.open_until and (s.open_until > now or s.probing))
