"""What Azure Backup answers, as plain facts: a VM's protected item (ItemFacts), a backup job
(JobFacts, with its phases, error and the expiry its propertyBag names), a recovery point
(PointFacts), each parsed from the SDK's models the way Azure really sends them (recorded)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from azure.mgmt.recoveryservicesbackup.models import AzureIaaSComputeVMProtectedItem

from autopilot.azure.vms import VmFacts
from autopilot.names import split_id, text


@dataclass(frozen=True)
class ItemFacts:
    """A VM's protected item in a vault."""

    id: str
    vault_id: str
    policy_id: str
    protection_state: str  # IRPending, Protected, ProtectionStopped, ...
    soft_deleted: bool
    last_backup_status: str
    last_backup_time: dt.datetime | None
    last_recovery_point: dt.datetime | None
    health: str
    vm_id: str
    excluded_luns: tuple[int, ...] = ()

    @property
    def policy_name(self) -> str:
        return self.policy_id.rsplit("/", 1)[-1] if self.policy_id else ""

    @classmethod
    def from_resource(cls, resource: Any) -> ItemFacts:
        props = AzureIaaSComputeVMProtectedItem(resource.properties)
        exclusion = (
            props.extended_properties and props.extended_properties.disk_exclusion_properties
        ) or None
        return cls(
            id=resource.id,
            vault_id=resource.id.split("/backupFabrics/")[0],
            policy_id=text(props.policy_id),
            protection_state=text(props.protection_state),
            soft_deleted=bool(props.is_scheduled_for_deferred_delete),
            last_backup_status=text(props.last_backup_status),
            last_backup_time=real_time(props.last_backup_time),
            last_recovery_point=real_time(props.last_recovery_point),
            health=text(props.health_status),
            vm_id=text(props.source_resource_id or props.virtual_machine_id),
            excluded_luns=tuple(exclusion.disk_lun_list or [])
            if exclusion and not exclusion.is_inclusion_list
            else (),
        )


@dataclass(frozen=True)
class JobFacts:
    id: str
    vault_id: str
    operation: str
    status: str
    start: dt.datetime | None
    end: dt.datetime | None
    vm_name: str
    phases: tuple[tuple[str, str], ...]  # (task, status): Take Snapshot, Transfer data to vault
    error_code: str
    error_message: str
    recommendations: tuple[str, ...]
    container: str = ""  # a job's GET names its container; a job list does not
    retain_until: dt.datetime | None = None  # the recovery point's expiry an on-demand backup asked for

    @property
    def container_key(self) -> str:
        """'iaasvmcontainerv2;<rg>;<vm>' in lower case, whichever way the job spells its container
        (recorded: 'iaasvmcontainerv2;rg;vm', ';iaasvmcontainerv2;rg;vm', none at all)."""
        container = self.container.lower()
        start = container.find("iaasvmcontainerv2;")
        if start >= 0:
            return container[start:]
        return container.removeprefix("iaasvmcontainer;").lstrip(";") or self.vm_name.lower()

    def is_for(self, vm: VmFacts | str) -> bool:
        """Whether the job backs up this VM (given as facts or as its resource id)."""
        _, group, name = (
            split_id(vm) if isinstance(vm, str) else (vm.subscription_id, vm.resource_group, vm.name)
        )
        if not self.container:
            return self.vm_name.lower() == name.lower()
        return self.container_key == f"iaasvmcontainerv2;{group};{name}".lower()

    @classmethod
    def from_resource(cls, resource: Any) -> JobFacts:
        props = resource.properties
        errors = list(getattr(props, "error_details", None) or [])
        extended = getattr(props, "extended_info", None)
        tasks = (
            tuple((text(t.task_id), text(t.status)) for t in (extended.tasks_list or [])) if extended else ()
        )
        bag = dict(extended.property_bag or {}) if extended else {}
        first = errors[0] if errors else None
        return cls(
            id=resource.name,
            vault_id=resource.id.split("/backupJobs/")[0],
            operation=text(props.operation),
            status=text(props.status),
            start=props.start_time,
            end=props.end_time,
            vm_name=text(props.entity_friendly_name),
            phases=tasks,
            error_code=text(first.error_code) if first else "",
            error_message=text(first.error_string) if first else "",
            recommendations=tuple(first.recommendations or []) if first else (),
            container=text(getattr(props, "container_name", None)),
            retain_until=bag_time(bag, "Recovery Point Expiry Time in UTC"),
        )


def bag_time(bag: dict[str, Any], key: str) -> dt.datetime | None:
    """A time from a job's propertyBag, where Azure writes them as 'M/d/yyyy h:mm:ss AM' in UTC
    (e.g. "Recovery Point Expiry Time in UTC": "1/29/2020 12:00:00 AM"); keys are matched without
    regard to case. None when the key is absent or the value is not such a time."""
    wanted = key.lower()
    value = next((str(v) for k, v in bag.items() if str(k).strip().lower() == wanted), None)
    if not value:
        return None
    try:
        return dt.datetime.strptime(value.strip(), "%m/%d/%Y %I:%M:%S %p").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


@dataclass(frozen=True)
class PointFacts:
    """A recovery point of a protected item."""

    name: str
    time: dt.datetime
    expiry: dt.datetime | None  # recoveryPointProperties.expiryTime, where Azure sends it
    tiers: tuple[str, ...]  # InstantRP (snapshot), HardenedRP (vault), ...

    @classmethod
    def from_resource(cls, resource: Any) -> PointFacts:
        props = resource.properties
        extra = getattr(props, "recovery_point_properties", None)
        expiry = getattr(extra, "expiry_time", None) if extra is not None else None
        return cls(
            name=str(resource.name),
            time=props.recovery_point_time,
            expiry=_parse_time(expiry),
            tiers=tuple(
                text(t.type) for t in (getattr(props, "recovery_point_tier_details", None) or []) if t.type
            ),
        )


def _parse_time(value: object) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def real_time(value: dt.datetime | None) -> dt.datetime | None:
    """Azure answers 2001-01-01 for "never" (e.g. lastBackupTime of an item not backed up yet)."""
    return value if value is not None and value.year > 2001 else None
