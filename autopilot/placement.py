"""Which vault of a region's set takes a VM to protect: the first with room.

Azure holds at most 1,000 Azure VMs in a Recovery Services vault. The rules may give a subscription
and region a set of vaults (in order); a new VM goes to the first vault whose items, counted, leave
room below the rules' capacity (maximum less headroom). A VM already in a vault stays there: Azure
protects a VM in one vault only, so placement is only asked for VMs that no vault protects.

Counting a vault's items is one paged list (1,000 items a page at most), so the counts are kept for
a while (`ttl`) and raised by one for each VM this instance protects. Another instance's
protections are seen at the next count; the rules' headroom is the margin for them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from autopilot.rules import VaultCapacity, VaultSpec

COUNT_TTL_SECONDS = 300.0


@dataclass(frozen=True)
class Placement:
    """The vault to protect a VM in, or None when every vault of the set is full."""

    vault: VaultSpec | None
    free: Mapping[str, int]  # lower-case vault id -> places left, for the vaults that were counted


class VaultRoom:
    """Items per vault, counted now and then and kept up to date by this instance's protections."""

    def __init__(
        self, count_items: Callable[[VaultSpec], int], capacity: VaultCapacity, ttl: float = COUNT_TTL_SECONDS
    ) -> None:
        self._count_items = count_items
        self.capacity = capacity
        self._ttl = ttl
        self._counts: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def observe(self, vault: VaultSpec, items: int) -> None:
        """A count read elsewhere (the sweep lists every item of the vault anyway)."""
        with self._lock:
            self._counts[vault.resource_id.lower()] = (items, time.monotonic())

    def items(self, vault: VaultSpec) -> int:
        key = vault.resource_id.lower()
        with self._lock:
            known = self._counts.get(key)
        if known is not None and time.monotonic() - known[1] < self._ttl:
            return known[0]
        count = self._count_items(vault)
        self.observe(vault, count)
        return count

    def place(self, vaults: Iterable[VaultSpec]) -> Placement:
        """The first vault of the set with room; counts only as far as it needs to look."""
        free: dict[str, int] = {}
        for vault in vaults:
            left = self.capacity.usable - self.items(vault)
            free[vault.resource_id.lower()] = max(left, 0)
            if left > 0:
                return Placement(vault, free)
        return Placement(None, free)

    def taken(self, vault: VaultSpec) -> None:
        """This instance put one more VM in the vault."""
        key = vault.resource_id.lower()
        with self._lock:
            known = self._counts.get(key)
            if known is not None:
                self._counts[key] = (known[0] + 1, known[1])
