"""Azure Backup for IaaS VMs: policies, discovery, protected items, jobs and recovery points.

Jobs follow the seed's rules. Each backup job has two phases, Take Snapshot and Transfer data to
vault, and each phase runs one sub-task at a time per VM: a job whose snapshot finishes while a
previous job's transfer still runs gets Transfer = Skipped. A job's timeline is fixed when it is
created (from the clock and the item's busy phases), so its status at any moment is derived from
timestamps; nothing needs to run in the background except the policy schedules.

About 1,100 lines: vaults' items, policies, jobs and recovery points are one model (a job changes
an item's state, a policy schedules jobs, a job makes points), split off where a part stands alone
(policy.py, restore.py, quotas.py).
"""

from __future__ import annotations

import copy
import datetime as dt
import heapq
import re
import uuid
from typing import Any

from armsim.backup import policy as policies
from armsim.backup import quotas, restore
from armsim.backup.errorcodes import JOB_ERRORS, error_details
from armsim.compute.models import ComputeBackend
from armsim.core.clock import iso
from armsim.core.errors import ArmError, BadRequest, Conflict, InvalidBackupInput, NotFound, ResourceNotFound
from armsim.core.http import Router
from armsim.core.operations import Operation, operations
from armsim.core.world import Provider
from armsim.vaults import security as posture
from armsim.vaults.models import VaultsBackend

ITEM_TYPE = "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems"
POLICY_TYPE = "Microsoft.RecoveryServices/vaults/backupPolicies"
JOB_TYPE = "Microsoft.RecoveryServices/vaults/backupJobs"
RP_TYPE = ITEM_TYPE + "/recoveryPoints"
TRANSIENT_CODES = ("BackUpOperationFailedV2", "CloudInternalError", "BackUpOperationFailed")
PERSON_CODES = (
    "ExtensionFailedVssWriterInBadState",
    "UserErrorFsFreezeFailed",
    "ExtensionSnapshotFailedNoNetwork",
)
MAX_ITEM_JOBS = 60
CONFIGURE_MESSAGE = (
    "Input for configure protection is not in proper format. Please ensure that container exists and other "
    "parameters are in valid format."
)


def ts_iso(ts: float) -> str:
    return iso(dt.datetime.fromtimestamp(ts, dt.UTC))


def bag_time(ts: float) -> str:
    """A time as a job's propertyBag writes it: 'M/d/yyyy h:mm:ss AM' in UTC (recorded:
    "Recovery Point Expiry Time in UTC": "1/29/2020 12:00:00 AM")."""
    t = dt.datetime.fromtimestamp(ts, dt.UTC)
    return f"{t.month}/{t.day}/{t.year} {t.hour % 12 or 12}:{t.minute:02d}:{t.second:02d} {'AM' if t.hour < 12 else 'PM'}"


def duration(seconds: float) -> str:
    """A duration as Azure writes a job's: .NET's XML TimeSpan form, e.g. PT1H11M17.4030139S, PT0S."""
    ticks = round(max(seconds, 0) * 10_000_000)
    days, ticks = divmod(ticks, 86400 * 10_000_000)
    hours, ticks = divmod(ticks, 3600 * 10_000_000)
    minutes, ticks = divmod(ticks, 60 * 10_000_000)
    whole, fraction = divmod(ticks, 10_000_000)
    text = "P" + (f"{days}D" if days else "") + "T"
    text += (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if whole or fraction or text.endswith("T"):
        text += f"{whole}" + (f".{fraction:07d}".rstrip("0") if fraction else "") + "S"
    return text


def time_span(seconds: float) -> str:
    """A remaining time as Azure writes deferredDeleteTimeRemaining: d.hh:mm:ss.fffffff (.NET TimeSpan)."""
    ticks = round(max(seconds, 0) * 10_000_000)
    days, ticks = divmod(ticks, 86400 * 10_000_000)
    hours, ticks = divmod(ticks, 3600 * 10_000_000)
    minutes, ticks = divmod(ticks, 60 * 10_000_000)
    whole, fraction = divmod(ticks, 10_000_000)
    text = f"{hours:02d}:{minutes:02d}:{whole:02d}" + (f".{fraction:07d}" if fraction else "")
    return f"{days}.{text}" if days else text


def names_for(vm_resource_id: str) -> tuple[str, str, str, str]:
    """(subscription, resource group, VM name, 'iaasvmcontainerv2;rg;vm') of a VM id. The container
    part is lower case, as Azure writes it in container and item names (recorded: VM enableVMBkpTest
    of resource group riteshcrg is 'iaasvmcontainerv2;riteshcrg;enablevmbkptest'); the friendly name
    keeps the VM's case."""
    parts = vm_resource_id.strip("/").split("/")
    subscription, group, name = parts[1], parts[3], parts[-1]
    return subscription, group, name, f"iaasvmcontainerv2;{group};{name}".lower()


class BackupBackend(Provider):
    name = "backup"

    def reset(self) -> None:
        self.policies: dict[str, dict[str, Any]] = {}  # lower id -> ARM JSON
        self.items: dict[str, dict[str, Any]] = {}  # lower id -> item record
        self.by_vm: dict[str, str] = {}  # lower VM id -> lower item id (a VM is in one vault only)
        self.jobs: dict[str, dict[str, dict[str, Any]]] = {}  # lower vault id -> job id -> job
        self.points: dict[str, list[dict[str, Any]]] = {}  # lower item id -> recovery points
        self.refreshed: dict[str, float] = {}  # lower vault id -> time of the last refreshContainers
        self.forced: dict[str, list[dict[str, Any]]] = {}  # lower VM id -> planned outcomes of next jobs
        self.policy_writes: dict[str, list[float]] = {}  # lower vault id -> times of policy creates/edits
        self.guard_proxies: dict[str, dict[str, dict[str, Any]]] = {}  # lower vault id -> name -> proxy
        self.pending_restores: list[list[str]] = []  # [lower vault id, job id] of restores not yet applied
        self.forced_restores: dict[str, list[dict[str, Any]]] = {}  # lower VM id -> outcomes of next restores
        self._schedule: list[tuple[float, str, str]] = []  # (due, item id, policy id)

    def register(self, router: Router) -> None:
        from armsim.backup.responses import ROUTES, BackupResponses

        router.mount(BackupResponses(self), ROUTES)

    def vault(self, subscription_id: str, group: str, name: str) -> dict[str, Any]:
        return self.world.backend(VaultsBackend).get(subscription_id, group, name)

    # -- policies --------------------------------------------------------------------------
    def put_policy(
        self, vault: dict[str, Any], name: str, body: dict[str, Any], counted: bool = True
    ) -> dict[str, Any]:
        """Create or edit a policy; `counted`: a write through ARM, which counts against the vault's
        policy writes in 24 hours (a seeded policy does not)."""
        stored = policies.validate(copy.deepcopy(body.get("properties") or {}))
        policy_id = f"{vault['model']['id']}/backupPolicies/{name}"
        quotas.check_policy_count(self, vault, policy_id)
        if counted:
            quotas.check_policy_writes(self, vault)
            quotas.record_policy_write(self, vault)
        self.policies[policy_id.lower()] = {
            "id": policy_id,
            "name": name,
            "type": POLICY_TYPE,
            "properties": stored,
        }
        # Items under the policy follow its new schedule.
        for item_id, item in self.items.items():
            if item["policy"].lower() == policy_id.lower() and item["state"] != "ProtectionStopped":
                self._schedule_next(item_id, self.world.now())
        return self.policy_view(policy_id)

    def policy_view(self, policy_id: str) -> dict[str, Any]:
        """A policy as Azure answers it: a standard (V1) policy without policyType (no V1 example or
        recording carries it) and with instantRPDetails (recorded since Oct 2019)."""
        policy = copy.deepcopy(self.policies[policy_id.lower()])
        if policy["properties"].get("policyType") == "V1":
            del policy["properties"]["policyType"]
            policy["properties"].setdefault("instantRPDetails", {})
        policy["properties"]["protectedItemsCount"] = sum(
            1 for item in self.items.values() if item["policy"].lower() == policy_id.lower()
        )
        return policy

    def get_policy(self, vault: dict[str, Any], name: str) -> dict[str, Any]:
        policy_id = f"{vault['model']['id']}/backupPolicies/{name}"
        if policy_id.lower() not in self.policies:
            raise NotFound(
                "BMSUserErrorPolicyNotFound",
                f"The backup policy '{name}' was not found in vault '{vault['model']['name']}'.",
            )
        return self.policy_view(policy_id)

    def delete_policy(self, vault: dict[str, Any], name: str) -> None:
        policy = self.get_policy(vault, name)
        if policy["properties"]["protectedItemsCount"]:
            raise BadRequest(
                "BMSUserErrorPolicyInUse",
                f"The policy '{name}' is associated with {policy['properties']['protectedItemsCount']} protected "
                "item(s). Move them to another policy or stop their protection before deleting it.",
            )
        del self.policies[policy["id"].lower()]

    def list_policies(self, vault: dict[str, Any]) -> list[dict[str, Any]]:
        prefix = f"{vault['model']['id']}/backupPolicies/".lower()
        return [self.policy_view(p["id"]) for k, p in sorted(self.policies.items()) if k.startswith(prefix)]

    # -- resource guard proxies (multi-user authorization) ----------------------------------
    def guard_proxies_of(self, vault_id: str) -> list[dict[str, Any]]:
        return list(self.guard_proxies.get(vault_id.lower(), {}).values())

    def put_guard_proxy(self, vault: dict[str, Any], name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Associate a Resource Guard with the vault (multi-user authorization). The guard itself
        (Microsoft.DataProtection/resourceGuards) is not simulated: its id is taken as given."""
        props = body.get("properties")
        props = props if isinstance(props, dict) else {}
        guard = props.get("resourceGuardResourceId")
        if not isinstance(guard, str) or not re.fullmatch(
            r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.DataProtection/resourceGuards/[^/]+",
            guard,
            re.IGNORECASE,
        ):
            raise InvalidBackupInput(
                "Input provided for the call is invalid. properties.resourceGuardResourceId must be the id of a "
                "Microsoft.DataProtection/resourceGuards resource."
            )
        record = {
            "name": name,
            "guard": guard,
            "description": props.get("description") if isinstance(props.get("description"), str) else None,
            "updated": self.world.now(),
        }
        self.guard_proxies.setdefault(vault["model"]["id"].lower(), {})[name.lower()] = record
        return self.guard_proxy_view(vault, record)

    def get_guard_proxy(self, vault: dict[str, Any], name: str) -> dict[str, Any]:
        record = self.guard_proxies.get(vault["model"]["id"].lower(), {}).get(name.lower())
        if record is None:
            raise ResourceNotFound(
                f"The resource guard proxy '{name}' was not found in vault '{vault['model']['name']}'."
            )
        return self.guard_proxy_view(vault, record)

    def guard_proxy_view(self, vault: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
        """As the official examples answer it (ResourceGuardProxyCRUD, 2026-11-01): the id under
        '/backupmanagement/resources/{vault}', the guard's id, the critical operations it protects with
        their default request ids, the time of the last change."""
        guard = record["guard"]
        props: dict[str, Any] = {
            "resourceGuardResourceId": guard,
            "resourceGuardOperationDetails": [
                {
                    "vaultCriticalOperation": f"Microsoft.DataProtection/resourceGuards/{operation}",
                    "defaultResourceRequest": f"{guard}/{operation}/default",
                }
                for operation in ("deleteResourceGuardProxyRequests", "disableSoftDeleteRequests")
            ],
            "lastUpdatedTime": ts_iso(record["updated"]),
        }
        if record.get("description"):
            props["description"] = record["description"]
        return {
            "id": f"/backupmanagement/resources/{vault['model']['name']}/backupResourceGuardProxies/{record['name']}",
            "name": record["name"],
            "type": "Microsoft.RecoveryServices/vaults/backupResourceGuardProxies",
            "properties": props,
        }

    # -- discovery -------------------------------------------------------------------------
    def refresh(self, vault: dict[str, Any]) -> None:
        self.refreshed[vault["model"]["id"].lower()] = self.world.now()

    def discovered(self, vault: dict[str, Any], vm: dict[str, Any]) -> bool:
        created = vm["sim"].get("createdTs", 0.0)
        refreshed = self.refreshed.get(vault["model"]["id"].lower(), float("-inf"))
        return created <= refreshed or self.world.now() - created >= self.world.config["discoverySeconds"]

    def protectable_vms(self, vault: dict[str, Any]) -> list[dict[str, Any]]:
        subscription = vault["model"]["id"].split("/")[2]
        location = vault["model"]["location"]
        return [
            vm
            for vm in self.world.backend(ComputeBackend).list_vms(subscription)
            if vm["model"]["location"] == location
            and vm["model"]["id"].lower() not in self.by_vm
            and self.discovered(vault, vm)
        ]

    # -- protected items -------------------------------------------------------------------
    def item_id(self, vault: dict[str, Any], container: str, item: str) -> str:
        return f"{vault['model']['id']}/backupFabrics/Azure/protectionContainers/{container}/protectedItems/{item}"

    def find_item(self, vault: dict[str, Any], fabric: str, container: str, name: str) -> dict[str, Any]:
        item = (
            self.items.get(self.item_id(vault, container, name).lower())
            if fabric.lower() == "azure"
            else None
        )
        if item is None:
            raise NotFound(
                "BMSUserErrorDataSourceObjectNotFound",
                "Item not found. Selected item might have been deleted. Please check if item is registered to the "
                f"vault. (The protected item '{name}' was not found in container '{container}' of vault "
                f"'{vault['model']['name']}'.)",
            )
        return item

    def _busy(self, item: dict[str, Any]) -> bool:
        op = operations(self.world).get(item.get("operation", ""))
        return op is not None and not op.finished(self.world.now())

    # Azure's refusals of a protected-item PUT, one branch each in the order Azure checks them, then
    # the change: splitting it would hide which check comes first, which the refusals depend on.
    def put_item(  # noqa: C901
        self,
        vault: dict[str, Any],
        fabric: str,
        container: str,
        name: str,
        body: dict[str, Any],
        seeding: bool = False,
    ) -> tuple[dict[str, Any], Operation]:
        """Enable protection, change the policy, stop protection (keeping data), resume, or undelete.
        Enabling protection in a full vault is accepted and its operation fails (`seeding`: refused
        with a ValueError, since no estate can hold more than Azure allows)."""
        if fabric.lower() != "azure":
            raise InvalidBackupInput(f"Fabric '{fabric}' is not valid; use 'Azure'.")
        props = body.get("properties")
        if not isinstance(props, dict):
            raise InvalidBackupInput("The protected item needs 'properties'.")
        key = self.item_id(vault, container, name).lower()
        existing = self.items.get(key)
        if existing is not None and self._busy(existing):
            raise Conflict(
                "BMSUserErrorObjectLocked",
                "Another operation is in progress on the selected item. Wait until the previous operation is "
                "completed and then retry.",
            )
        if existing is not None and existing["softDeleted"]:
            if props.get("isRehydrate"):
                existing["softDeleted"] = False
                existing["deleteAt"] = None
                existing["deletedAt"] = None
                return existing, self._job_operation(
                    vault, existing, "Undelete", None, {"Undelete flag": "True"}
                )
            raise InvalidBackupInput(
                "The item is in soft-deleted state. Undelete it (PUT with isRehydrate true) before "
                "resuming protection."
            )
        vm_id = props.get("sourceResourceId") or props.get("virtualMachineId") or (existing or {}).get("vm")
        if not vm_id:
            raise InvalidBackupInput("properties.sourceResourceId (the VM's id) is required.")
        sub, _, vm_name, expected_container = names_for(vm_id)
        if container.lower() != f"iaasvmcontainer;{expected_container}".lower() or name.lower() != (
            f"vm;{expected_container}".lower()
        ):
            raise InvalidBackupInput(
                f"The container and item names must be 'IaasVMContainer;{expected_container}' and "
                f"'VM;{expected_container}' for VM '{vm_id}'."
            )
        vm = self.world.backend(ComputeBackend).find_vm(vm_id)
        if vm is None and existing is None:
            raise BadRequest(
                "BMSUserErrorInvalidConfigureProtectionRequest",
                f"{CONFIGURE_MESSAGE} The virtual machine '{vm_id}' does not exist.",
            )
        vault_sub = vault["model"]["id"].split("/")[2]
        if existing is None:
            assert vm is not None
            if sub.lower() != vault_sub.lower() or vm["model"]["location"] != vault["model"]["location"]:
                raise BadRequest(
                    "BMSUserErrorInvalidConfigureProtectionRequest",
                    f"{CONFIGURE_MESSAGE} The virtual machine is in {vm['model']['location']} (subscription {sub}) and the vault in "
                    f"{vault['model']['location']} (subscription {vault_sub}). A VM can be protected only by a "
                    "vault in its own region and subscription.",
                )
            other = self.by_vm.get(vm_id.lower())
            if other is not None and other != key:
                other_vault = self.items[other]["vault"].split("/")[-1]
                raise BadRequest(
                    "BMSUserErrorInvalidConfigureProtectionRequest",
                    f"{CONFIGURE_MESSAGE} The virtual machine is already protected by vault '{other_vault}'. A VM can be protected by "
                    "one vault only; stop its protection there and delete its backup data first.",
                )
            if not self.discovered(vault, vm):
                raise BadRequest(
                    "BMSUserErrorInvalidConfigureProtectionRequest",
                    f"{CONFIGURE_MESSAGE} The virtual machine '{vm_name}' has not been discovered by vault '{vault['model']['name']}' "
                    "yet. Run refreshContainers (discovery) and retry.",
                )
        stopping = props.get("protectionState") == "ProtectionStopped"
        policy_id = props.get("policyId") or ""
        if not stopping:
            if not policy_id:
                raise InvalidBackupInput("properties.policyId is required to protect a VM.")
            policy = self.policies.get(policy_id.lower())
            if policy is None or not policy_id.lower().startswith(vault["model"]["id"].lower() + "/"):
                raise InvalidBackupInput(
                    f"Input provided for the call is invalid. The backup policy '{policy_id.rsplit('/', 1)[-1]}' was not found in vault "
                    f"'{vault['model']['name']}'."
                )
            if vm is not None and _trusted_launch(vm) and policy["properties"]["policyType"] != "V2":
                raise BadRequest(
                    "UserErrorTrustedLaunchVMRequiresEnhancedPolicy",
                    "Trusted Launch virtual machines can be protected only with an Enhanced (V2) policy.",
                )
        exclusion = (props.get("extendedProperties") or {}).get("diskExclusionProperties")
        if exclusion is not None and vm is not None:
            luns = exclusion.get("diskLunList") or []
            disk_luns = {d["lun"] for d in vm["model"]["properties"]["storageProfile"].get("dataDisks") or []}
            unknown = [lun for lun in luns if lun not in disk_luns]
            if unknown:
                raise BadRequest(
                    "BMSUserErrorInvalidDiskLun",
                    f"The VM has no data disk at LUN(s) {unknown}; its data disks are at {sorted(disk_luns)}.",
                )
        # Validated: now change state.
        now = self.world.now()
        if existing is None and (limit := quotas.items_over_limit(self, vault)) is not None:
            if seeding:
                raise ValueError(
                    f"protections: vault {vault['model']['id']} already holds {limit['max']} items "
                    "(limits.protectedItemsPerVault)"
                )
            error = quotas.quota_error(vault, limit)
            if limit.get("synchronous"):
                raise ArmError(int(limit["status"]), error["code"], error["message"])
            # Accepted, as Azure accepts it: the ConfigureBackup job and its operation fail, no item.
            refused = {
                "id": self.item_id(
                    vault, f"IaasVMContainer;{expected_container}", f"VM;{expected_container}"
                ),
                "vm": vm["model"]["id"] if vm else vm_id,
                "friendlyName": vm_name,
                "jobs": [],
            }
            return refused, self._job_operation(
                vault, refused, "ConfigureBackup", error, {"Policy Name": policy_id.rsplit("/", 1)[-1]}
            )
        if existing is None:
            item = {
                "id": self.item_id(
                    vault, f"IaasVMContainer;{expected_container}", f"VM;{expected_container}"
                ),
                "vault": vault["model"]["id"],
                "vm": vm["model"]["id"] if vm else vm_id,
                "friendlyName": vm_name,
                "containerName": expected_container,
                "policy": "",
                "state": "IRPending",
                "softDeleted": False,
                "deleteAt": None,
                "exclusion": None,
                "dataId": str(uuid.uuid4().int)[:18],
                "created": now,
                "jobs": [],
                "snapshotBusy": 0.0,
                "transferBusy": 0.0,
                "firstPointAt": None,
            }
            self.items[key] = item
            self.by_vm[item["vm"].lower()] = key
        else:
            item = existing
        if exclusion is not None:
            item["exclusion"] = {
                "diskLunList": list(exclusion.get("diskLunList") or []),
                "isInclusionList": bool(exclusion.get("isInclusionList")),
            }
        if stopping:
            item["state"] = "ProtectionStopped"
            item["policy"] = ""
            return item, self._job_operation(vault, item, "DisableBackup", None, {"Policy Name": ""})
        item["policy"] = self.policies[policy_id.lower()]["id"]
        item["state"] = "Protected"
        self._schedule_next(key, now)
        policy_name = item["policy"].rsplit("/", 1)[-1]
        return item, self._job_operation(vault, item, "ConfigureBackup", None, {"Policy Name": policy_name})

    def delete_item(self, vault: dict[str, Any], item: dict[str, Any]) -> Operation:
        """Stop protection and delete backup data; with soft delete on, the item is kept 14 days."""
        if self._busy(item):
            raise Conflict(
                "BMSUserErrorObjectLocked",
                "Another operation is in progress on the selected item. Wait until the previous operation is "
                "completed and then retry.",
            )
        security = self.world.backend(VaultsBackend).security(vault)
        visible = self.visible_points(item)
        if visible and posture.immutable(security):
            # Immutable vault: "A protected item can't have its recovery points deleted before their
            # respective expiry date" (Azure Backup docs, restricted operations); the code and message
            # are Azure's (captured), the status is armsim's choice.
            raise BadRequest(posture.IMMUTABLE_DENIED_CODE, posture.IMMUTABLE_DENIED_MESSAGE)
        points = str(len(visible))
        op = self._job_operation(vault, item, "DeleteBackupData", None, {"Number of Recovery Points": points})
        if posture.soft_delete_on(security):
            days = int(security["retentionDays"])
            item["softDeleted"] = True
            item["deletedAt"] = self.world.now()
            item["deleteAt"] = item["deletedAt"] + days * 86400
            item["state"] = "ProtectionStopped"
            item["policy"] = ""
        else:
            self._forget_item(item)
        return op

    def _forget_item(self, item: dict[str, Any]) -> None:
        key = item["id"].lower()
        self.items.pop(key, None)
        self.points.pop(key, None)
        if self.by_vm.get(item["vm"].lower()) == key:
            del self.by_vm[item["vm"].lower()]

    def vault_item_count(self, vault_id: str) -> int:
        prefix = vault_id.lower() + "/"
        return sum(1 for key in self.items if key.startswith(prefix))

    def check_vault_deletable(self, vault_id: str) -> None:
        count = self.vault_item_count(vault_id)
        if count:
            soft = [
                i for k, i in self.items.items() if k.startswith(vault_id.lower() + "/") and i["softDeleted"]
            ]
            if len(soft) == count:
                raise BadRequest(
                    "ServiceResourceNotEmptyWithBackendMessage",
                    "Recovery Services vault cannot be deleted as there are backup items still present in soft "
                    "delete state. Visit the following link for the steps to permanently delete soft deleted items: "
                    "https://aka.ms/undeletesoftdeleteditems.",
                )
            containers = ", ".join(
                sorted(
                    i["containerName"] for k, i in self.items.items() if k.startswith(vault_id.lower() + "/")
                )
            )
            raise BadRequest(
                "ServiceResourceNotEmptyWithContainerDetails",
                "Vault cannot be deleted as there are existing resources within the vault. Please ensure there are "
                "no backup items, protected servers or backup management servers associated with this vault. "
                f"Unregister the following containers associated with this vault before proceeding for deletion : "
                f"{containers}",
            )

    def forget_vault(self, vault_id: str) -> None:
        prefix = vault_id.lower() + "/"
        for key in [k for k in self.policies if k.startswith(prefix)]:
            del self.policies[key]
        self.jobs.pop(vault_id.lower(), None)
        self.refreshed.pop(vault_id.lower(), None)
        self.policy_writes.pop(vault_id.lower(), None)
        self.guard_proxies.pop(vault_id.lower(), None)

    def item_view(self, item: dict[str, Any]) -> dict[str, Any]:
        now = self.world.now()
        last = self._last_backup(item, now)
        points = self.visible_points(item)
        props: dict[str, Any] = {
            "protectedItemType": "Microsoft.Compute/virtualMachines",
            "backupManagementType": "AzureIaasVM",
            "workloadType": "VM",
            "containerName": item["containerName"],
            "sourceResourceId": item["vm"],
            "virtualMachineId": item["vm"],
            "friendlyName": item["friendlyName"],
            "policyId": item["policy"],
            "policyName": item["policy"].rsplit("/", 1)[-1] if item["policy"] else "",
            "protectionState": self._protection_state(item),
            "protectionStatus": "Healthy" if not last or last["status"] == "Completed" else "Unhealthy",
            "healthStatus": _health(last),
            "protectedItemDataId": item["dataId"],
        }
        if item["policy"]:
            props["policyType"] = self.policies[item["policy"].lower()]["properties"]["policyType"]
        # Before its first backup Azure answers an empty status and the year-2001 sentinel time.
        props["lastBackupStatus"] = last["status"] if last else ""
        props["lastBackupTime"] = ts_iso(last["start"]) if last else "2001-01-01T00:00:00Z"
        if points:
            props["lastRecoveryPoint"] = ts_iso(points[-1]["time"])
        if item["softDeleted"]:
            # Recorded: the time the item was deleted, and the 14 days' remainder counting down.
            props["deferredDeleteTimeInUTC"] = ts_iso(item.get("deletedAt") or item["deleteAt"] - 14 * 86400)
            props["isScheduledForDeferredDelete"] = True
            props["deferredDeleteTimeRemaining"] = time_span(item["deleteAt"] - now)
        if item["exclusion"] is not None:
            props["extendedProperties"] = {"diskExclusionProperties": dict(item["exclusion"])}
        return {
            "id": item["id"],
            "name": item["id"].rsplit("/", 1)[-1],
            "type": ITEM_TYPE,
            "properties": props,
        }

    def _protection_state(self, item: dict[str, Any]) -> str:
        """IRPending (initial replication pending) until the first recovery point exists."""
        if item["state"] == "ProtectionStopped":
            return "ProtectionStopped"
        first = item.get("firstPointAt")
        return "Protected" if first is not None and first <= self.world.now() else "IRPending"

    # -- jobs ------------------------------------------------------------------------------
    def _vault_jobs(self, vault_id: str) -> dict[str, dict[str, Any]]:
        return self.jobs.setdefault(vault_id.lower(), {})

    def _job_operation(
        self,
        vault: dict[str, Any],
        item: dict[str, Any],
        operation: str,
        error: Any,
        bag: dict[str, str] | None = None,
    ) -> Operation:
        """A short management job (ConfigureBackup, DisableBackup, ...) and the async operation behind it;
        `bag` is what its propertyBag says besides the VM's name (as recorded for each kind)."""
        job = self._new_job(vault, item, operation, kind="Management")
        job["bag"] = dict(bag or {})
        if error:
            job["error"] = error["code"]
        op = operations(self.world).begin(operation, resource_id=item["id"], job_id=job["id"], error=error)
        job["end"] = op.done_at
        item["operation"] = op.id
        return op

    def _new_job(
        self, vault: dict[str, Any], item: dict[str, Any], operation: str, kind: str
    ) -> dict[str, Any]:
        now = self.world.now()
        job = {
            "id": str(uuid.uuid4()),
            "vault": vault["model"]["id"],
            "item": item["id"],
            "vm": item["vm"],
            "name": item["friendlyName"],
            "operation": operation,
            "kind": kind,
            "start": now,
            "end": now,
            "plan": None,
        }
        self._vault_jobs(vault["model"]["id"])[job["id"]] = job
        item["jobs"] = [*item["jobs"][-(MAX_ITEM_JOBS - 1) :], job["id"]]
        return job

    def start_backup(
        self, vault: dict[str, Any], item: dict[str, Any], kind: str, start: float, retain_until: float | None
    ) -> dict[str, Any]:
        """A backup job whose whole timeline is planned now (see the module docstring)."""
        config = self.world.config
        job = self._new_job(vault, item, "Backup", kind)
        job["start"] = start
        vm = self.world.backend(ComputeBackend).find_vm(item["vm"])
        snapshot_code, transfer_code = self._plan_outcome(item, vm)
        snapshot_start = max(start, item["snapshotBusy"])
        snapshot_end = snapshot_start + config["snapshotSeconds"]
        item["snapshotBusy"] = snapshot_end
        plan: dict[str, Any] = {
            "snapshotStart": snapshot_start,
            "snapshotEnd": snapshot_end,
            "snapshotError": snapshot_code,
            "transferStart": None,
            "transferEnd": None,
            "transferError": transfer_code,
            "transferSkipped": False,
        }
        if snapshot_code:
            job["end"] = snapshot_end
        elif item["transferBusy"] > snapshot_end:
            plan["transferSkipped"] = True
            job["end"] = snapshot_end
        else:
            plan["transferStart"] = snapshot_end
            plan["transferEnd"] = snapshot_end + config["transferSeconds"]
            item["transferBusy"] = plan["transferEnd"]
            job["end"] = plan["transferEnd"]
        job["plan"] = plan
        if item["exclusion"] and vm is not None:
            included, excluded = _split_disks(item, vm)
            os_disk = vm["model"]["properties"]["storageProfile"]["osDisk"].get("name", "")
            job["disks"] = {
                "included": [os_disk, *(d.get("name", "") for d in included)],
                "excluded": [d.get("name", "") for d in excluded],
            }
        if kind == "OnDemand":
            job["requestedExpiry"] = retain_until
        if not snapshot_code:
            self._add_point(item, vm, job, retain_until)
            if item.get("firstPointAt") is None or item["firstPointAt"] > snapshot_end:
                item["firstPointAt"] = snapshot_end
        return job

    def _plan_outcome(self, item: dict[str, Any], vm: dict[str, Any] | None) -> tuple[str | None, str | None]:
        if vm is None:
            return "BCMV2VMNotFound", None
        forced = self.forced.get(item["vm"].lower())
        if forced:
            plan = forced.pop(0)
            if not forced:
                del self.forced[item["vm"].lower()]
            if plan["outcome"] == "Failed":
                return plan.get("errorCode") or "BackUpOperationFailedV2", None
            if plan["outcome"] == "CompletedWithWarnings":
                return None, plan.get("errorCode") or "CopyingVHDsFromBackUpVaultTakingLongTime"
            return None, None
        sim = vm["sim"]
        if sim.get("provisioningState") == "Failed":
            return "UserErrorVmProvisioningStateFailed", None
        if sim["agent"] == "Missing":
            return "AzureVmOffline", None
        if (
            sim["power"] == "running"
            and sim["agent"] == "Ready"
            and self.world.now() < sim.get("agentReadyAt", 0.0)
        ):
            # Its agent has not reported since the VM was created (compute/models.py): a backup needs it.
            return "UserErrorGuestAgentStatusUnavailable", None
        if sim["agent"] == "NotReady" and sim["power"] == "running":
            return "UserErrorGuestAgentStatusUnavailable", None
        roll = self.world.random.random()
        if roll < self.world.config["jobFailureRate"]:
            return self.world.random.choice(TRANSIENT_CODES + PERSON_CODES), None
        if roll < self.world.config["jobFailureRate"] + self.world.config["jobWarningRate"]:
            return None, "CopyingVHDsFromBackUpVaultTakingLongTime"
        return None, None

    def force_outcomes(self, vm_id: str, outcome: str, error_code: str | None, count: int) -> None:
        if outcome not in ("Completed", "Failed", "CompletedWithWarnings"):
            raise ValueError("outcome must be Completed, Failed or CompletedWithWarnings")
        if error_code is not None and error_code not in JOB_ERRORS:
            raise ValueError(f"unknown error code {error_code!r}; known: {', '.join(sorted(JOB_ERRORS))}")
        self.forced.setdefault(vm_id.lower(), []).extend(
            {"outcome": outcome, "errorCode": error_code} for _ in range(count)
        )

    def job_status(self, job: dict[str, Any], now: float) -> tuple[str, list[dict[str, Any]]]:
        """The job's status and its two sub-tasks at `now`, per the seed's table."""
        if job["operation"] == "Restore":
            return restore.status(job, now)
        plan = job["plan"]
        if plan is None:  # a management job
            if now < job["end"]:
                return "InProgress", []
            return ("Failed" if job.get("error") else "Completed"), []
        # As Azure lists them: taskId, duration (always PT0S in every recorded and documented job) and
        # status. The official example and the recordings of Jul-Oct 2019 write "Transfer data to
        # vault"; one of Dec 2019 writes "Transfer Data to Vault": readers compare without case.
        snapshot = {"taskId": "Take Snapshot", "duration": "PT0S", "status": "NotStarted"}
        transfer = {"taskId": "Transfer data to vault", "duration": "PT0S", "status": "NotStarted"}
        if now >= plan["snapshotStart"]:
            if now < plan["snapshotEnd"]:
                snapshot["status"] = "InProgress"
            else:
                snapshot["status"] = "Failed" if plan["snapshotError"] else "Completed"
        if now < plan["snapshotEnd"]:
            return "InProgress", [snapshot, transfer]
        if plan["snapshotError"]:
            transfer["status"] = "Failed"
            return "Failed", [snapshot, transfer]
        if plan["transferSkipped"]:
            transfer["status"] = "Skipped"
            return "Completed", [snapshot, transfer]
        if now < plan["transferEnd"]:
            transfer["status"] = "InProgress"
            return "InProgress", [snapshot, transfer]
        if plan["transferError"]:
            transfer["status"] = "Failed"
            return "CompletedWithWarnings", [snapshot, transfer]
        transfer["status"] = "Completed"
        return "Completed", [snapshot, transfer]

    def job_view(
        self, job: dict[str, Any], detailed: bool, base_url: str = "https://127.0.0.1"
    ) -> dict[str, Any]:
        """A job as Azure answers it; `base_url` (armsim's, as the client addressed it) makes the blob
        URIs of a restore's propertyBag."""
        now = self.world.now()
        status, tasks = self.job_status(job, now)
        started = min(job["start"], now)
        props: dict[str, Any] = {
            "jobType": "AzureIaaSVMJob",
            "backupManagementType": "AzureIaasVM",
            "entityFriendlyName": job["name"],
            "operation": job["operation"],
            "status": status,
            "startTime": ts_iso(started),
            "duration": duration((job["end"] if status != "InProgress" else now) - started),
            "activityId": job["id"],
            "virtualMachineVersion": "Compute",
        }
        if status != "InProgress":
            props["endTime"] = ts_iso(job["end"])
        plan = job["plan"]
        code = (
            (plan and (plan["snapshotError"] or plan["transferError"]))
            or job.get("error")
            or (job.get("restore") or {}).get("warning")
        )
        if code and status in ("Failed", "CompletedWithWarnings"):
            props["errorDetails"] = error_details(code, job["operation"])
        if detailed:
            # A job's GET names its container; a list of jobs does not (recorded, and ListJobs.json).
            props["containerName"] = container_name(job)
            if job["operation"] == "Restore":
                extended = restore.extended_info(self, job, status, tasks, base_url)
            else:
                extended = {"tasksList": tasks, "propertyBag": self.property_bag(job, status)}
            if job["operation"] == "Backup":
                extended["internalPropertyBag"] = {"IsInstantRpJob": "True"}  # as recorded
            if code and status in ("Failed", "CompletedWithWarnings"):
                extended["dynamicErrorMessage"] = error_details(code, job["operation"])[0]["errorString"]
            props["extendedInfo"] = extended
        vault_id = job["vault"]
        return {
            "id": f"{vault_id}/backupJobs/{job['id']}",
            "name": job["id"],
            "type": JOB_TYPE,
            "properties": props,
        }

    def property_bag(self, job: dict[str, Any], status: str) -> dict[str, str]:
        """A job's propertyBag as recorded: the VM's name; a management job's facts (Policy Name, Number
        of Recovery Points, Undelete flag); a backup's requested expiry ('M/d/yyyy h:mm:ss AM', on-demand
        backups only), and once it has finished its size and, when the item excludes disks, the disks
        backed up and excluded."""
        bag = {"VM Name": job["name"], **job.get("bag", {})}
        if job["operation"] != "Backup":
            return bag
        if job.get("requestedExpiry") is not None:
            bag["Recovery Point Expiry Time in UTC"] = bag_time(job["requestedExpiry"])
        if status in ("Completed", "CompletedWithWarnings"):
            bag["Backup Size"] = "0 MB"  # data sizes are not simulated
            disks = job.get("disks")
            if disks:
                bag["Backed-up disk(s)"] = "; ".join(disks["included"])
                if disks["excluded"]:
                    bag["Excluded disk(s)"] = "; ".join(disks["excluded"])
        return bag

    def _last_backup(self, item: dict[str, Any], now: float) -> dict[str, Any] | None:
        """The newest finished backup job of the item, with its status."""
        jobs = self._vault_jobs(item["vault"])
        for job_id in reversed(item["jobs"]):
            job = jobs.get(job_id)
            if job and job["operation"] == "Backup" and job["end"] <= now:
                status, _ = self.job_status(job, now)
                return {"status": status, "start": job["start"], "end": job["end"]}
        return None

    def running_snapshot(self, item: dict[str, Any]) -> dict[str, Any] | None:
        """A backup job of the item still in its snapshot phase (a new backup must wait for it)."""
        now = self.world.now()
        jobs = self._vault_jobs(item["vault"])
        for job_id in reversed(item["jobs"]):
            job = jobs.get(job_id)
            if job and job["plan"] and now < job["plan"]["snapshotEnd"]:
                return job
        return None

    def on_demand_today(self, item: dict[str, Any]) -> int:
        now = self.world.now()
        midnight = dt.datetime.fromtimestamp(now, dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        jobs = self._vault_jobs(item["vault"])
        return sum(
            1
            for job_id in item["jobs"]
            if (job := jobs.get(job_id))
            and job["kind"] == "OnDemand"
            and job["start"] >= midnight.timestamp()
        )

    def list_jobs(self, vault: dict[str, Any], filters: dict[str, str]) -> list[dict[str, Any]]:
        now = self.world.now()
        start = filter_time(filters["startTime"]) if "startTime" in filters else None
        end = filter_time(filters["endTime"]) if "endTime" in filters else None
        result = []
        for job in sorted(
            self._vault_jobs(vault["model"]["id"]).values(), key=lambda j: j["start"], reverse=True
        ):
            if job["start"] > now:
                continue
            if (start is not None and job["start"] < start) or (end is not None and job["start"] > end):
                continue
            if "operation" in filters and job["operation"].lower() != filters["operation"].lower():
                continue
            if "backupManagementType" in filters and filters["backupManagementType"].lower() != "azureiaasvm":
                continue
            if "jobId" in filters and job["id"].lower() != filters["jobId"].lower():
                continue
            if "status" in filters:
                status, _ = self.job_status(job, now)
                if status.lower() != filters["status"].lower():
                    continue
            result.append(job)
        return result

    def find_job(self, vault: dict[str, Any], job_id: str) -> dict[str, Any]:
        job = self._vault_jobs(vault["model"]["id"]).get(job_id.lower()) or self._vault_jobs(
            vault["model"]["id"]
        ).get(job_id)
        if job is None or job["start"] > self.world.now():
            raise NotFound("BMSUserErrorJobNotFound", f"The job '{job_id}' was not found in the vault.")
        return job

    # -- recovery points -------------------------------------------------------------------
    def _add_point(
        self, item: dict[str, Any], vm: dict[str, Any] | None, job: dict[str, Any], retain_until: float | None
    ) -> None:
        plan = job["plan"]
        policy = self.policies.get(item["policy"].lower()) if item["policy"] else None
        instant_days = policy["properties"]["instantRpRetentionRangeInDays"] if policy else 2
        if retain_until is None:
            retain_until = (
                job["start"]
                + (policies.retention_days(policy["properties"], job["start"]) if policy else 30) * 86400
            )
        vault_from = None if plan["transferSkipped"] or plan["transferError"] else plan["transferEnd"]
        point_id = str(uuid.uuid4().int)[:18]
        data_disks = (vm["model"]["properties"]["storageProfile"].get("dataDisks") or []) if vm else []
        included, excluded = _split_disks(item, vm) if vm else ([], [])
        os_type = (
            vm["model"]["properties"]["storageProfile"]["osDisk"].get("osType", "Linux") if vm else "Linux"
        )
        running = bool(vm and vm["sim"]["power"] == "running")
        point = {
            "id": point_id,
            "time": plan["snapshotStart"],
            "visibleFrom": plan["snapshotEnd"],
            "vaultFrom": vault_from,
            "instantExpiry": plan["snapshotEnd"] + instant_days * 86400,
            "vaultExpiry": retain_until,
            "type": ("AppConsistent" if os_type == "Windows" else "FileSystemConsistent")
            if running
            else "CrashConsistent",
            "osType": os_type,
            "size": (vm["model"]["properties"].get("hardwareProfile") or {}).get("vmSize", "") if vm else "",
            "osDisk": vm["model"]["properties"]["storageProfile"]["osDisk"].get("name", "") if vm else "",
            "included": [{"lun": d["lun"], "name": d.get("name")} for d in included],
            "excluded": [{"lun": d["lun"], "name": d.get("name")} for d in excluded],
            "disks": len(data_disks) + 1,
            "exclusion": bool(item["exclusion"]),
            # What a restore of the point makes (armsim/backup/restore.py): the backed-up disks' sizes
            # and SKUs, and whether the VM had an agent.
            "restore": restore.disk_facts(self.world.backend(ComputeBackend), vm, included) if vm else None,
        }
        job["recoveryPoint"] = point_id
        job["retainUntil"] = retain_until
        self.points.setdefault(item["id"].lower(), []).append(point)

    def visible_points(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        now = self.world.now()
        result = []
        for point in self.points.get(item["id"].lower(), []):
            if point["visibleFrom"] > now:
                continue
            instant = now < point["instantExpiry"]
            in_vault = point["vaultFrom"] is not None and point["vaultFrom"] <= now < point["vaultExpiry"]
            if instant or in_vault:
                result.append(point)
        return sorted(result, key=lambda p: p["time"])

    def point_view(
        self, item: dict[str, Any], point: dict[str, Any], detailed: bool = True
    ) -> dict[str, Any]:
        """A recovery point as recorded: the disk configuration only when the item excludes disks, its
        disk lists (the OS disk at LUN -1) only in a GET."""
        now = self.world.now()
        tiers = []
        if now < point["instantExpiry"]:
            tiers.append({"type": "InstantRP", "status": "Valid"})
        if point["vaultFrom"] is not None and point["vaultFrom"] <= now < point["vaultExpiry"]:
            tiers.append({"type": "HardenedRP", "status": "Valid"})
        props: dict[str, Any] = {
            "objectType": "IaasVMRecoveryPoint",
            "recoveryPointType": point["type"],
            "recoveryPointTime": ts_iso(point["time"]),
            "isSourceVMEncrypted": False,
            "isInstantIlrSessionActive": False,
            "recoveryPointTierDetails": tiers,
            "isManagedVirtualMachine": True,
            "virtualMachineSize": point["size"],
            "originalStorageAccountOption": False,
            "osType": point["osType"],
        }
        if point.get("exclusion", True):
            configuration: dict[str, Any] = {
                "numberOfDisksIncludedInBackup": len(point["included"]) + 1,
                "numberOfDisksAttachedToVm": point["disks"],
            }
            if detailed:
                os_disk = {"lun": -1, "name": point.get("osDisk", "")}
                configuration["includedDiskList"] = [
                    os_disk,
                    *({"lun": d["lun"], "name": d["name"]} for d in point["included"]),
                ]
                configuration["excludedDiskList"] = [
                    {"lun": d["lun"], "name": d["name"]} for d in point["excluded"]
                ]
            props["recoveryPointDiskConfiguration"] = configuration
        return {
            "id": f"{item['id']}/recoveryPoints/{point['id']}",
            "name": point["id"],
            "type": RP_TYPE,
            "properties": props,
        }

    # -- schedules -------------------------------------------------------------------------
    def _schedule_next(self, item_key: str, after: float) -> None:
        item = self.items.get(item_key)
        if item is None or not item["policy"]:
            return
        policy = self.policies.get(item["policy"].lower())
        if policy is None:
            return
        due = policies.next_run(policy["properties"], after)
        heapq.heappush(self._schedule, (due, item_key, item["policy"].lower()))

    def tick(self, now: float) -> None:
        restore.tick(self, now)  # finished restores leave their disks and blobs
        # Soft-deleted items whose retention has passed are purged.
        for expired in [i for i in self.items.values() if i["softDeleted"] and i["deleteAt"] <= now]:
            self._forget_item(expired)
        if not self.world.config["scheduledBackups"]:
            return
        limit = self.world.config["scheduleCatchUp"]
        while self._schedule and self._schedule[0][0] <= now:
            due, item_key, policy_key = heapq.heappop(self._schedule)
            item = self.items.get(item_key)
            if item is None or item["policy"].lower() != policy_key or item["state"] == "ProtectionStopped":
                continue  # the item moved on; its new schedule is already queued
            vault_record = self.world.backend(VaultsBackend).find(item["vault"])
            if vault_record is None:
                continue
            properties = self.policies[policy_key]["properties"]
            runs = [due]
            upcoming = policies.next_run(properties, due)
            while upcoming <= now:
                runs.append(upcoming)
                upcoming = policies.next_run(properties, upcoming)
            # After a long jump of the clock only the latest few occurrences run, as a catch-up.
            for start in runs[-limit:]:
                self.start_backup(vault_record, item, "Scheduled", start, None)
            heapq.heappush(self._schedule, (upcoming, item_key, policy_key))

    # -- persistence -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "policies": self.policies,
            "items": self.items,
            "jobs": self.jobs,
            "points": self.points,
            "refreshed": self.refreshed,
            "forced": self.forced,
            "policyWrites": self.policy_writes,
            "guardProxies": self.guard_proxies,
            "pendingRestores": self.pending_restores,
            "forcedRestores": self.forced_restores,
        }

    def load(self, data: dict[str, Any]) -> None:
        self.policies = data.get("policies", {})
        self.items = data.get("items", {})
        self.jobs = data.get("jobs", {})
        self.points = data.get("points", {})
        self.refreshed = data.get("refreshed", {})
        self.forced = data.get("forced", {})
        self.policy_writes = data.get("policyWrites", {})
        self.guard_proxies = data.get("guardProxies", {})
        self.pending_restores = data.get("pendingRestores", [])
        self.forced_restores = data.get("forcedRestores", {})
        self.by_vm = {item["vm"].lower(): key for key, item in self.items.items()}
        self._schedule = []
        now = self.world.now()
        for key in self.items:
            self._schedule_next(key, now)


def container_name(job: dict[str, Any]) -> str:
    """A job's containerName as its GET names it: 'iaasvmcontainerv2;rg;vm' (recorded)."""
    container: str = job["item"].split("/protectionContainers/")[1].split("/")[0]
    return container.split(";", 1)[1] if ";" in container else container


def _split_disks(
    item: dict[str, Any], vm: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The VM's data disks the item backs up, and those it excludes (diskExclusionProperties)."""
    data_disks = vm["model"]["properties"]["storageProfile"].get("dataDisks") or []
    exclusion = item["exclusion"] or {}
    if not exclusion:
        return list(data_disks), []
    listed = set(exclusion.get("diskLunList") or [])
    included = [d for d in data_disks if (d["lun"] in listed) == bool(exclusion.get("isInclusionList"))]
    return included, [d for d in data_disks if d not in included]


def _trusted_launch(vm: dict[str, Any]) -> bool:
    profile = vm["model"]["properties"].get("securityProfile") or {}
    return str(profile.get("securityType", "")).lower() == "trustedlaunch"


def _health(last: dict[str, Any] | None) -> str:
    if last is None or last["status"] == "Completed":
        return "Passed"
    if last["status"] == "CompletedWithWarnings":
        return "ActionSuggested"
    return "ActionRequired"


def filter_time(value: str) -> float:
    """Filter times: Azure's 'yyyy-MM-dd hh:mm:ss tt' (UTC) or ISO 8601."""
    for fmt in ("%Y-%m-%d %I:%M:%S %p", "%Y-%m-%d %H:%M:%S"):
        try:
            return dt.datetime.strptime(value, fmt).replace(tzinfo=dt.UTC).timestamp()
        except ValueError:
            pass
    try:
        from armsim.core.clock import parse_iso

        return parse_iso(value).timestamp()
    except ValueError:
        raise BadRequest(
            "BMSUserErrorInvalidFilter", f"The time '{value}' in the job filter is not valid."
        ) from None
