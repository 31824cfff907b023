"""Log Analytics workspaces and the table they hold: AddonAzureBackupJobs, built from the backup job history.

Azure Backup sends a vault's jobs to a workspace through the vault's diagnostic settings, in the
resource-specific mode, as one record per job when the job finishes ("scheduled backup jobs are pushed
as soon as they finish", Microsoft's "Monitor at scale by using Azure Monitor" page). armsim models
that as: every registered workspace holds the finished jobs of every vault (or of the vaults its
registration names), each as one row, at query time. A job in progress has no row yet; a job that
finishes in the simulated future has none either. Azure's ingestion lag (20 to 30 minutes) is not
simulated: a job's row is there from the moment it finishes.

The table's columns are those of the AddonAzureBackupJobs reference (Azure Monitor table reference)
with the meanings of "Data model for Azure Backup diagnostics events"; see COLUMNS and
docs/ARMSIM.md for each column's value and what armsim leaves empty.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from armsim.backup.models import BackupBackend
from armsim.core.errors import BadRequest, NotFound
from armsim.core.ids import GUID
from armsim.core.world import Provider
from armsim.vaults.models import VaultsBackend

if TYPE_CHECKING:
    from armsim.core.http import Router

TABLE = "AddonAzureBackupJobs"
#: The workspace every reset leaves registered (any other GUID can be added through the control API).
DEFAULT_WORKSPACE_ID = "00000000-0000-0000-0000-0000000000a1"

#: (column, Log Analytics type), in the order of the table reference. Every string column holds ""
#: rather than null, as Kusto strings cannot be null.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("TenantId", "string"),
    ("TimeGenerated", "datetime"),
    ("AdHocOrScheduledJob", "string"),
    ("ArchiveTierStorageReplicationType", "string"),
    ("AzureDataCenter", "string"),
    ("BackupItemFriendlyName", "string"),
    ("BackupItemId", "string"),
    ("BackupItemUniqueId", "string"),
    ("BackupManagementServerUniqueId", "string"),
    ("BackupManagementType", "string"),
    ("Category", "string"),
    ("DatasourceFriendlyName", "string"),
    ("DatasourceResourceId", "string"),
    ("DatasourceSetFriendlyName", "string"),
    ("DatasourceSetResourceId", "string"),
    ("DatasourceSetType", "string"),
    ("DatasourceType", "string"),
    ("DataTransferredInMB", "real"),
    ("ExtendedProperties", "dynamic"),
    ("JobDurationInSecs", "real"),
    ("JobFailureCode", "string"),
    ("JobOperation", "string"),
    ("JobOperationSubType", "string"),
    ("JobStartDateTime", "datetime"),
    ("JobStatus", "string"),
    ("JobUniqueId", "string"),
    ("OperationName", "string"),
    ("ProtectedContainerUniqueId", "string"),
    ("RecoveryJobDestination", "string"),
    ("RecoveryJobRPDateTime", "datetime"),
    ("RecoveryJobRPLocation", "string"),
    ("RecoveryLocationType", "string"),
    ("ResourceGroupName", "string"),
    ("ResourceId", "string"),
    ("SchemaVersion", "string"),
    ("SourceSystem", "string"),
    ("State", "string"),
    ("StorageReplicationType", "string"),
    ("SubscriptionId", "string"),
    ("Type", "string"),
    ("VaultName", "string"),
    ("VaultTags", "string"),
    ("VaultType", "string"),
    ("VaultUniqueId", "string"),
    ("_BilledSize", "real"),
    ("_IsBillable", "string"),
    ("_ResourceId", "string"),
    ("_SubscriptionId", "string"),
)


@dataclass
class JobRows:
    """The finished jobs a query sees (what the engine loads into DuckDB), normalised: one entry per
    job, and the per-item, per-vault and per-kind values once each."""

    now: float
    job_id: list[str] = field(default_factory=list)
    item: list[int] = field(default_factory=list)  # index into items
    variant: list[int] = field(default_factory=list)  # index into variants
    start: list[float] = field(default_factory=list)
    end: list[float] = field(default_factory=list)
    # item_id, vm_id, name, vault_key, unique_id, container_unique_id
    items: list[dict[str, str]] = field(default_factory=list)
    # (TenantId, JobOperation, kind, JobStatus, JobFailureCode)
    variants: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    vaults: list[dict[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.job_id)


def final_status(job: dict[str, Any]) -> tuple[str, str]:
    """A finished job's status and failure code, by the seed's table (as BackupBackend.job_status
    gives it once the job has ended). Completed jobs carry the code "Success"."""
    plan = job["plan"]
    if plan is None:  # a management job (ConfigureBackup, DisableBackup, ...)
        return ("Failed", str(job["error"])) if job.get("error") else ("Completed", "Success")
    if plan["snapshotError"]:
        return "Failed", str(plan["snapshotError"])
    if plan["transferSkipped"]:
        return "Completed", "Success"
    if plan["transferError"]:
        return "CompletedWithWarnings", str(plan["transferError"])
    return "Completed", "Success"


def vault_unique_id(vault_id: str) -> str:
    """A stable GUID per vault (Azure's VaultUniqueId is an opaque identifier too)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "armsim:" + vault_id.lower()))


class LogAnalyticsBackend(Provider):
    name = "loganalytics"

    def reset(self) -> None:
        # lower-case workspace id -> {"workspaceId", "vaultIds": [lower vault ids] or None (all vaults)}
        self.workspaces: dict[str, dict[str, Any]] = {}
        self.add_workspace({"workspaceId": DEFAULT_WORKSPACE_ID})

    def register(self, router: Router) -> None:
        from armsim.loganalytics.responses import ROUTES, LogAnalyticsResponses

        router.mount(LogAnalyticsResponses(self), ROUTES)

    # -- workspaces ---------------------------------------------------------------------------
    def add_workspace(self, data: dict[str, Any]) -> dict[str, Any]:
        workspace_id = str(data.get("workspaceId", ""))
        if not GUID.match(workspace_id):
            raise BadRequest(
                "InvalidControlRequest",
                f"/loganalytics/workspaces: workspaceId must be a GUID (a workspace's customerId), not {workspace_id!r}.",
            )
        vault_ids = data.get("vaultIds")
        if vault_ids is not None and (
            not isinstance(vault_ids, list) or not all(isinstance(v, str) for v in vault_ids)
        ):
            raise BadRequest(
                "InvalidControlRequest",
                "/loganalytics/workspaces: vaultIds must be a list of vault ids.",
            )
        record = {
            "workspaceId": workspace_id.lower(),
            "vaultIds": [v.lower() for v in vault_ids] if vault_ids is not None else None,
        }
        self.workspaces[workspace_id.lower()] = record
        self.world.changed()
        return dict(record)

    def remove_workspace(self, workspace_id: str) -> None:
        if self.workspaces.pop(workspace_id.lower(), None) is None:
            raise NotFound("InvalidControlRequest", f"No workspace {workspace_id} is registered.")
        self.world.changed()

    def workspace(self, workspace_id: str) -> dict[str, Any] | None:
        return self.workspaces.get(workspace_id.lower()) if GUID.match(workspace_id) else None

    # -- the table ----------------------------------------------------------------------------
    def job_rows(self, workspace_ids: list[str], start: float | None, end: float | None) -> JobRows:
        """The rows of AddonAzureBackupJobs in these workspaces whose TimeGenerated (the job's end)
        is within [start, end] and not after the simulated now. Call with the world lock held."""
        now = self.world.now()
        upper = now if end is None else min(end, now)
        lower = float("-inf") if start is None else start
        rows = JobRows(now=now)
        vault_rows: dict[str, dict[str, str]] = {}
        items: dict[str, int] = {}
        variants: dict[tuple[str, str, str, str, str], int] = {}
        vaults = self.world.backend(VaultsBackend)
        for workspace_id in workspace_ids:
            record = self.workspaces[workspace_id.lower()]
            tenant = record["workspaceId"]
            wanted = set(record["vaultIds"]) if record["vaultIds"] is not None else None
            for vault_key, jobs in self.world.backend(BackupBackend).jobs.items():
                if wanted is not None and vault_key not in wanted:
                    continue
                vault_row = vault_rows.get(vault_key)
                if vault_row is None:
                    vault = vaults.find(vault_key)
                    if vault is None:
                        continue
                    vault_row = vault_rows[vault_key] = _vault_row(vault_key, vault)
                    rows.vaults.append(vault_row)
                for job in jobs.values():
                    finished = job["end"]
                    if finished > upper or finished < lower or job["start"] > now:
                        continue
                    item = items.get(job["item"])
                    if item is None:
                        item = items[job["item"]] = len(rows.items)
                        rows.items.append(_item_row(job, vault_row))
                    variant_key = (tenant, job["operation"], job["kind"], *final_status(job))
                    variant = variants.get(variant_key)
                    if variant is None:
                        variant = variants[variant_key] = len(rows.variants)
                        rows.variants.append(variant_key)
                    rows.job_id.append(job["id"])
                    rows.item.append(item)
                    rows.variant.append(variant)
                    rows.start.append(job["start"])
                    rows.end.append(finished)
        return rows

    # -- persistence --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"workspaces": self.workspaces}

    def load(self, data: dict[str, Any]) -> None:
        self.workspaces = data.get("workspaces") or self.workspaces


def _item_row(job: dict[str, Any], vault_row: dict[str, str]) -> dict[str, str]:
    """A backup item's values. Its unique ids end in the container's name, iaasvmcontainerv2;<rg>;<vm>,
    as Azure's do (queries in the wild split BackupItemUniqueId on ';' and read the resource group at
    index 3 and the VM at index 4)."""
    container = job["item"].split("/protectionContainers/", 1)[1].split("/", 1)[0]
    prefix = f"{vault_row['location']};{vault_row['unique_id']}"
    return {
        "item_id": job["item"],
        "vm_id": job["vm"],
        "name": job["name"],
        "vault_key": vault_row["vault_key"],
        "unique_id": f"{prefix};{container.partition(';')[2]}".lower(),
        "container_unique_id": f"{prefix};{container}".lower(),
    }


def _vault_row(vault_key: str, vault: dict[str, Any]) -> dict[str, str]:
    model = vault["model"]
    parts = model["id"].split("/")
    return {
        "vault_key": vault_key,
        "id": model["id"],
        "name": model["name"],
        "resource_group": parts[4],
        "subscription": parts[2],
        "location": model["location"],
        "redundancy": vault["storage"].get("storageType", ""),
        "tags": json.dumps(model.get("tags") or {}, separators=(",", ":")),
        "unique_id": vault_unique_id(model["id"]),
    }
