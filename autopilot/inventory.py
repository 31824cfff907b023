"""The estate in a few paged calls: every VM of the subscriptions in scope (with its instance view,
statusOnly=true) joined with the protected items of every vault the rules name. IDs are compared
case-insensitively, as ARM may change their case. No per-VM call is made."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from azure.core.exceptions import HttpResponseError

from autopilot.azure_backup import AzureBackup, ItemFacts, error_code
from autopilot.protect import Decision, decide
from autopilot.rules import Rules, VaultSpec
from autopilot.vms import VmFacts, split_id


@dataclass
class Inventory:
    vms: list[VmFacts] = field(default_factory=list)
    items: dict[str, ItemFacts] = field(default_factory=dict)  # lower-case VM id -> its item in a rules vault
    orphans: list[ItemFacts] = field(default_factory=list)  # items whose VM no longer exists
    errors: dict[str, str] = field(default_factory=dict)  # what could not be read (e.g. 403), and why
    shared_disks: set[str] = field(default_factory=set)  # lower-case ids of shared managed disks

    def item_of(self, vm: VmFacts) -> ItemFacts | None:
        return self.items.get(vm.id.lower())

    def shared_luns(self, vm: VmFacts) -> list[int]:
        return [
            d.lun
            for d in vm.data_disks
            if d.managed_disk_id and d.managed_disk_id.lower() in self.shared_disks
        ]


def read_inventory(
    azure: AzureBackup, rules: Rules, subscriptions: Iterable[str], workers: int = 8
) -> Inventory:
    inventory = Inventory()
    subscriptions = list(subscriptions)
    vaults: list[VaultSpec] = [
        v for v in rules.vaults if v.subscription_id.lower() in {s.lower() for s in subscriptions}
    ]

    def vms_of(subscription: str) -> tuple[str, list[VmFacts] | str]:
        try:
            return subscription, azure.list_vms(subscription)
        except HttpResponseError as error:
            return subscription, _unreadable(error)

    def items_of(vault: VaultSpec) -> tuple[VaultSpec, list[ItemFacts] | str]:
        try:
            return vault, azure.list_items(vault)
        except HttpResponseError as error:
            return vault, _unreadable(error)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        vm_results = list(pool.map(vms_of, subscriptions))
        item_results = list(pool.map(items_of, vaults))
    for subscription, vms in vm_results:
        if isinstance(vms, str):
            inventory.errors[f"/subscriptions/{subscription}"] = vms
        else:
            inventory.vms.extend(vms)
    # Shared disks (Azure Backup cannot back them up) are read in pages, only where VMs have data disks.
    with_disks = sorted({vm.subscription_id for vm in inventory.vms if vm.data_disks})
    for subscription in with_disks:
        try:
            inventory.shared_disks |= azure.shared_disks(subscription)
        except HttpResponseError as error:
            inventory.errors[f"/subscriptions/{subscription}/providers/Microsoft.Compute/disks"] = (
                _unreadable(error)
            )
    known = {vm.id.lower() for vm in inventory.vms}
    unlisted = {s.lower() for s, vms in vm_results if isinstance(vms, str)}
    for vault, items in item_results:
        if isinstance(items, str):
            inventory.errors[vault.resource_id] = items
            continue
        for item in items:
            if item.vm_id.lower() in known:
                inventory.items[item.vm_id.lower()] = item
            elif split_id(item.vm_id)[0].lower() not in unlisted:
                # An item is an orphan only when its VM's subscription was listed and the VM is not in it.
                inventory.orphans.append(item)
    inventory.vms.sort(key=lambda vm: vm.id.lower())
    return inventory


def _unreadable(error: Exception) -> str:
    """What a refused read becomes: a finding for 401/403/404 (no role assignment, no such vault);
    anything else (throttling or server errors after azure-core's retries) is raised to be retried."""
    if isinstance(error, HttpResponseError) and error.status_code in (401, 403, 404):
        return f"{error_code(error)}: {error.message}"
    raise error


def plan(rules: Rules, inventory: Inventory) -> list[tuple[VmFacts, Decision]]:
    """What would be done to each VM, and why; changes nothing. (Shared disks and other vaults are
    checked when a VM is protected; the plan does not make per-VM calls.)"""
    return [(vm, decide(rules, vm, inventory.item_of(vm), inventory.shared_luns(vm))) for vm in inventory.vms]
