"""Which vault of a region's set takes a VM to protect: the first with room.

Azure holds at most 1,000 Azure VMs in a Recovery Services vault. The rules may give a subscription
and region a set of vaults (in order); a new VM goes to the first vault whose items, counted, leave
room below the rules' capacity (maximum less headroom). A VM already in a vault stays there: Azure
protects a VM in one vault only, so placement is only asked for VMs that no vault protects.

Listing a vault's items is one paged list, so each list is kept for a while (`ttl`) and this
instance's protections are added to it. Another instance's protections are seen at the next list;
the rules' headroom is the margin for them. The same lists tell the protect path that a VM created
moments ago is in none of the set's vaults, so it need not ask Azure (`backupStatus`) per VM.
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
    """The VMs each vault holds, listed now and then, plus the places this instance has taken since
    (kept apart from the list until a later list shows them, so that a new list never drops a place
    taken by a protection still in flight): for placing new VMs, and for knowing that a new VM is in
    none of the set's vaults without asking Azure about each VM."""

    def __init__(
        self,
        list_vms: Callable[[VaultSpec], Iterable[str]],
        capacity: VaultCapacity,
        ttl: float = COUNT_TTL_SECONDS,
    ) -> None:
        self._list_vms = list_vms
        self.capacity = capacity
        self._ttl = ttl
        self._listed: dict[str, tuple[frozenset[str], float]] = {}  # vault id -> (lower-case VM ids, read at)
        self._placed: dict[str, set[str]] = {}  # vault id -> VMs placed here, not yet listed
        self._listing: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def observe(self, vault: VaultSpec, vm_ids: Iterable[str]) -> None:
        """The vault's items as read (here, or by the sweep, which lists every item anyway)."""
        key = vault.resource_id.lower()
        listed = frozenset(v.lower() for v in vm_ids)
        with self._lock:
            self._listed[key] = (listed, time.monotonic())
            self._placed[key] = self._placed.get(key, set()) - listed

    def _vms(self, vault: VaultSpec) -> frozenset[str]:
        """The vault's VMs: as last listed (listed again once the list is older than the ttl), and
        those placed here since."""
        key = vault.resource_id.lower()
        with self._lock:
            listing = self._listing.setdefault(key, threading.Lock())
        with listing:  # one list of a vault at a time: a burst's threads wait for it, then share it
            with self._lock:
                known = self._listed.get(key)
            if known is None or time.monotonic() - known[1] >= self._ttl:
                self.observe(vault, self._list_vms(vault))
        with self._lock:
            return self._listed[key][0] | self._placed.get(key, set())

    def items(self, vault: VaultSpec) -> int:
        return len(self._vms(vault))

    def holder(self, vaults: Iterable[VaultSpec], vm_id: str) -> VaultSpec | None:
        """The vault of the set that holds the VM (as listed, or placed there by this instance)."""
        return next((v for v in vaults if vm_id.lower() in self._vms(v)), None)

    def place(self, vaults: Iterable[VaultSpec], vm_id: str | None = None) -> Placement:
        """The first vault of the set with room; lists only as far as it needs to look. With
        `vm_id`, the place is taken for that VM at once (under the lock, so that concurrent
        protections cannot overfill a vault); `release` gives it back if the VM is not protected."""
        free: dict[str, int] = {}
        for vault in vaults:
            self._vms(vault)  # listed, if the list is stale
            key = vault.resource_id.lower()
            with self._lock:
                placed = self._placed.setdefault(key, set())
                held = len(self._listed[key][0] | placed)
                left = self.capacity.usable - held
                free[key] = max(left, 0)
                if left > 0:
                    if vm_id is not None:
                        placed.add(vm_id.lower())
                    return Placement(vault, free)
        return Placement(None, free)

    def release(self, vault: VaultSpec, vm_id: str) -> None:
        """A place taken for a VM that was not protected after all."""
        with self._lock:
            self._placed.get(vault.resource_id.lower(), set()).discard(vm_id.lower())
