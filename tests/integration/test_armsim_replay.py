"""Replay of real Azure interactions against armsim: for each operation the product uses, armsim is
brought into the situation a recording shows (same subscription, resource group, vault, VM and disk
names, same request body), the recorded request is sent again, and armsim's answer is compared with
Azure's:

- the status code, and the long-running-operation headers (Location, Azure-AsyncOperation: present
  when Azure sent them, pointing at the same kind of URL; Retry-After: present when the recording or
  the newer official example of the operation shows it);
- the body's keys at every level: armsim sends no key that the evidence for the operation lacks (the
  recordings of that operation, and the official REST examples of newer api-versions, which win for
  the fields they show), and every key of the recording is in armsim's answer unless LACKING names it
  with the reason it cannot matter (an entry no longer needed fails, so the list only shrinks);
- discriminators, names and their case, job tasks and propertyBag keys, duration and date formats,
  and operation-status bodies while running and when done.

The recordings are tests/fixtures/azure-recordings/ (tests/recordings.py); the official examples are
tests/fixtures/azure-rest-examples/. Requests carry the api-versions of the SDKs the product pins,
not the recordings' 2016-2019 ones. Runs against the in-process armsim only (`sim`).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.armsim_support import ARM_SCOPE, Sandbox
from tests.examples_support import example_path
from tests.recordings import Interaction, recorded, select

S = "00000000-0000-0000-0000-000000000000"  # the recorder's zeroed subscription
RG = "clitest.rg000001"
VAULT = "clitest-vault000002"
VM = "clitest-vm000003"
VAULT_ID = f"/subscriptions/{S}/resourceGroups/{RG}/providers/Microsoft.RecoveryServices/vaults/{VAULT}"
VM_ID = f"/subscriptions/{S}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/{VM}"
CONTAINER = f"IaasVMContainer;iaasvmcontainerv2;{RG};{VM}"
ITEM = f"VM;iaasvmcontainerv2;{RG};{VM}"
ITEM_PATH = f"{VAULT_ID}/backupFabrics/Azure/protectionContainers/{CONTAINER}/protectedItems/{ITEM}"
# The api-versions of the SDKs the product pins (armsim/SUPPORTED_OPERATIONS.md, "api-versions").
API = {
    "Microsoft.Compute": "2026-04-01",
    "Microsoft.RecoveryServices/vaults": "2026-11-01",
    "backup": "2026-10-01",
    "Microsoft.Storage": "2025-06-01",
    "Microsoft.Network": "2026-03-01",
}

ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?Z$")
DURATION = re.compile(r"^P(\d+D)?T(\d+H)?(\d+M)?(\d+(\.\d{1,7})?S)?$")  # .NET TimeSpan in XML form
BAG_TIME = re.compile(r"^\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d\d:\d\d (AM|PM)$")  # "1/29/2020 12:00:00 AM"
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)

# -- the official examples that are evidence for each operation (newer api-versions) -------------
# (file, prefix): the example's response body describes the object at `prefix` of the operation's
# answer ("" = the whole body).
EXAMPLES: dict[str, tuple[tuple[str, str], ...]] = {
    "VirtualMachines_Get": (
        ("compute/VirtualMachine_Get.json", ""),
        ("compute/VirtualMachine_Get_InstanceView.json", "properties.instanceView"),
    ),
    "Vaults_CreateOrUpdate": (("recoveryservices/PUTVault.json", ""), ("recoveryservices/PUTVault_WithRedundancySettings.json", "")),
    "Vaults_Get": (("recoveryservices/GETVault.json", ""),),
    "BackupResourceStorageConfigsNonCRR_Get": (("recoveryservicesbackup/BackupStorageConfig_Get.json", ""),),
    "BackupResourceStorageConfigsNonCRR_Update": (("recoveryservicesbackup/BackupStorageConfig_Put.json", ""),),
    "ProtectionPolicies_Get": (("recoveryservicesbackup/ProtectionPolicies_Get.json", ""), ("recoveryservicesbackup/v2-Get-Policy.json", "")),
    "ProtectionPolicies_CreateOrUpdate": (
        ("recoveryservicesbackup/ProtectionPolicies_CreateOrUpdate_Simple.json", ""),
        ("recoveryservicesbackup/ProtectionPolicies_CreateOrUpdate_Complex.json", ""),
        ("recoveryservicesbackup/IaaS_v2_daily.json", ""),
    ),
    "BackupPolicies_List": (("recoveryservicesbackup/v2-List-Policies.json", ""),),
    "ProtectionContainers_Refresh": (("recoveryservicesbackup/RefreshContainers.json", ""),),
    "ProtectionContainerRefreshOperationResults_Get": (("recoveryservicesbackup/RefreshContainers_OperationResults.json", ""),),
    "BackupProtectableItems_List": (("recoveryservicesbackup/BackupProtectableItems_List.json", ""),),
    "BackupProtectedItems_List": (("recoveryservicesbackup/BackupProtectedItems_List.json", ""),),
    "ProtectedItems_Get": (("recoveryservicesbackup/Compute_ProtectedItem_Get.json", ""),),
    "ProtectedItems_CreateOrUpdate": (("recoveryservicesbackup/ConfigureProtection.json", ""),),
    "Backups_Trigger": (("recoveryservicesbackup/TriggerBackup_Post.json", ""),),
    "BackupOperationStatuses_Get": (
        ("recoveryservicesbackup/ProtectedItem_Delete_OperationStatus.json", ""),
        ("recoveryservicesbackup/ProtectedItemOperationStatus.json", ""),
    ),
    "JobDetails_Get": (("recoveryservicesbackup/GetJobDetails.json", ""),),
    "BackupJobs_List": (("recoveryservicesbackup/ListJobs.json", ""),),
    "Restores_Trigger": (("recoveryservicesbackup/TriggerRestore_RestoreDisks_IaasVMRestoreRequest.json", ""),),
    "BackupResourceVaultConfigs_Get": (("recoveryservicesbackup/BackupResourceVaultConfigs_Get.json", ""),),
    "BackupResourceVaultConfigs_Update": (("recoveryservicesbackup/BackupResourceVaultConfigs_Patch.json", ""),),
    "StorageAccounts_GetProperties": (("storage/StorageAccountGetProperties.json", ""),),
}  # fmt: skip

# -- keys a recording has that armsim's answer lacks, each with the reason it cannot matter --------
_ACTIONS = (
    "actionsInfo ([1] = JobSupportedAction Cancellable) advertises job cancellation, which armsim does not "
    "simulate (POST .../backupJobs/{job}/cancel answers 501); no reader of the product looks at it."
)
_HEALTH = (
    "healthDetails (the backup pre-check's result: code, title, message, recommendations) is not simulated; "
    "the product reads healthStatus, protectionStatus and lastBackupStatus, which armsim answers."
)
_RP_EXTRA = (
    "recoveryPointAdditionalInfo ('') and sourceVMStorageType (a storage classification of the source VM) "
    "are not simulated; restore, the only reader of either, is not simulated."
)
_VM_RATELIMIT = "x-ms-ratelimit-remaining-resource"
_EXACT_VERSION = (
    "imageReference.exactVersion (the image version 'latest' resolved to) is not simulated: armsim does not "
    "resolve image versions, and no reader of the product looks at it."
)
LACKING: dict[tuple[str, int], dict[str, str]] = {
    ("test_backup_disk_exclusion", 8): {"properties.storageProfile.imageReference.exactVersion": _EXACT_VERSION},
    ("test_backup_disk_exclusion", 25): {"properties.storageProfile.imageReference.exactVersion": _EXACT_VERSION},
    ("test_backup_disk_exclusion", 80): {"properties.actionsInfo": _ACTIONS, "properties.actionsInfo[]": _ACTIONS},
    ("test_backup_disk_exclusion", 97): {"properties.actionsInfo": _ACTIONS, "properties.actionsInfo[]": _ACTIONS},
    ("test_backup_disk_exclusion", 103): {"properties.actionsInfo": _ACTIONS, "properties.actionsInfo[]": _ACTIONS},
    ("test_backup_disk_exclusion", 219): {"properties.actionsInfo": _ACTIONS, "properties.actionsInfo[]": _ACTIONS},
    ("test_backup_job", 90): {"properties.actionsInfo": _ACTIONS, "properties.actionsInfo[]": _ACTIONS},
    ("test_backup_job", 113): {"properties.actionsInfo": _ACTIONS, "properties.actionsInfo[]": _ACTIONS},
    ("test_backup_job", 228): {"properties.actionsInfo": _ACTIONS, "properties.actionsInfo[]": _ACTIONS},
    ("test_backup_rp", 85): {"properties.actionsInfo": _ACTIONS, "properties.actionsInfo[]": _ACTIONS},
    ("test_backup_disk_exclusion", 232): {"properties.actionsInfo": _ACTIONS, "properties.actionsInfo[]": _ACTIONS},
    ("test_backup_disk_exclusion", 240): {"properties.actionsInfo": _ACTIONS, "properties.actionsInfo[]": _ACTIONS},
    ("test_backup_disk_exclusion", 252): {"properties.actionsInfo": _ACTIONS, "properties.actionsInfo[]": _ACTIONS},
    ("test_backup_disk_exclusion", 260): {"properties.actionsInfo": _ACTIONS, "properties.actionsInfo[]": _ACTIONS},
    ("test_backup_disk_exclusion", 261): {"properties.actionsInfo": _ACTIONS, "properties.actionsInfo[]": _ACTIONS},
    ("test_backup_restore", 287): {
        "properties.actionsInfo": _ACTIONS,
        "properties.actionsInfo[]": _ACTIONS,
        "properties.extendedInfo.dynamicErrorMessage": (
            "An empty dynamicErrorMessage on a running restore (Sep 2019); the Dec 2019 recordings of a running "
            "restore (test_backup_disk_exclusion #232, #252) have none, and armsim follows the newer."
        ),
    },
    ("test_backup_restore", 295): {"properties.actionsInfo": _ACTIONS, "properties.actionsInfo[]": _ACTIONS},
    ("test_backup_job", 244): {"value[].properties.actionsInfo": _ACTIONS, "value[].properties.actionsInfo[]": _ACTIONS},
    ("test_backup_job", 246): {"value[].properties.actionsInfo": _ACTIONS, "value[].properties.actionsInfo[]": _ACTIONS},
    ("test_backup_job", 247): {"value[].properties.actionsInfo": _ACTIONS, "value[].properties.actionsInfo[]": _ACTIONS},
    ("test_backup_job", 245): {"value[].properties.actionsInfo": _ACTIONS, "value[].properties.actionsInfo[]": _ACTIONS},
    ("test_backup_disk_exclusion", 220): {
        "value[].properties.healthDetails": _HEALTH,
        "value[].properties.healthDetails[]": _HEALTH,
        "value[].properties.healthDetails[].code": _HEALTH,
        "value[].properties.healthDetails[].title": _HEALTH,
        "value[].properties.healthDetails[].message": _HEALTH,
        "value[].properties.healthDetails[].recommendations": _HEALTH,
    },
    ("test_backup_protection", 34): {
        "value[].properties.healthDetails": _HEALTH,
        "value[].properties.healthDetails[]": _HEALTH,
        "value[].properties.healthDetails[].code": _HEALTH,
        "value[].properties.healthDetails[].title": _HEALTH,
        "value[].properties.healthDetails[].message": _HEALTH,
        "value[].properties.healthDetails[].recommendations": _HEALTH,
    },
    ("test_backup_job", 229): {
        "value[].properties.healthDetails": _HEALTH,
        "value[].properties.healthDetails[]": _HEALTH,
        "value[].properties.healthDetails[].code": _HEALTH,
        "value[].properties.healthDetails[].title": _HEALTH,
        "value[].properties.healthDetails[].message": _HEALTH,
        "value[].properties.healthDetails[].recommendations": _HEALTH,
    },
    ("test_backup_disk_exclusion", 221): {
        "value[].properties.recoveryPointAdditionalInfo": _RP_EXTRA,
        "value[].properties.sourceVMStorageType": _RP_EXTRA,
    },
    ("test_backup_disk_exclusion", 226): {
        "properties.recoveryPointAdditionalInfo": _RP_EXTRA,
        "properties.sourceVMStorageType": _RP_EXTRA,
    },
    ("test_backup_job", 231): {
        "value[].properties.recoveryPointAdditionalInfo": _RP_EXTRA,
        "value[].properties.sourceVMStorageType": _RP_EXTRA,
    },
    ("test_backup_job", 236): {
        "properties.recoveryPointAdditionalInfo": _RP_EXTRA,
        "properties.sourceVMStorageType": _RP_EXTRA,
    },
}  # fmt: skip

# Keys armsim once sent that no evidence shows, removed together with the product's reliance on them
# (issue 10 item 3); test_jobs_carry_no_is_user_triggered and
# test_job_property_bag_carries_no_recovery_point_id assert they stay absent.
OWNED: dict[str, str] = {
    "properties.isUserTriggered": "issue 10 item 3 (product): no recording or example carries isUserTriggered",
    "properties.extendedInfo.propertyBag.Recovery Point Id": "issue 10 item 3 (product): no recording carries it",
    "value[].properties.isUserTriggered": "issue 10 item 3 (product): no recording or example carries isUserTriggered",
}
OPAQUE = ("tags",)  # maps whose keys are user data

_RP_LISTS = (
    "value[].properties.recoveryPointDiskConfiguration.includedDiskList",
    "value[].properties.recoveryPointDiskConfiguration.includedDiskList[]",
    "value[].properties.recoveryPointDiskConfiguration.includedDiskList[].lun",
    "value[].properties.recoveryPointDiskConfiguration.includedDiskList[].name",
    "value[].properties.recoveryPointDiskConfiguration.excludedDiskList",
    "value[].properties.recoveryPointDiskConfiguration.excludedDiskList[]",
    "value[].properties.recoveryPointDiskConfiguration.excludedDiskList[].lun",
    "value[].properties.recoveryPointDiskConfiguration.excludedDiskList[].name",
)


# -- comparing -------------------------------------------------------------------------------------
def key_paths(value: Any, prefix: str = "") -> set[str]:
    """Every key path of a JSON value ('a.b', lists as 'a[]'); the keys of propertyBag are kept as
    keys (they are the schema of a job's facts), the keys of tags are not."""
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, child in value.items():
            path = f"{prefix}.{key}" if prefix else key
            paths.add(path)
            if key not in OPAQUE:
                paths |= key_paths(child, path)
    elif isinstance(value, list):
        if value:
            paths.add(f"{prefix}[]")
        for child in value:
            paths |= key_paths(child, f"{prefix}[]")
    return paths


def _examples(operation: str) -> Iterator[tuple[dict[str, Any], str]]:
    for name, prefix in EXAMPLES.get(operation, ()):
        yield json.loads(example_path(name).read_text(encoding="utf-8")), prefix


# Operations that answer the same resource as another: the evidence of one is evidence for the other
# (a PUT answers what a GET does; a list's value[] holds what a GET answers).
SAME_RESOURCE: dict[str, tuple[tuple[str, str, str], ...]] = {
    "Vaults_CreateOrUpdate": (("Vaults_Get", "", ""),),
    "Vaults_Get": (("Vaults_CreateOrUpdate", "", ""),),
    "ProtectionPolicies_CreateOrUpdate": (("ProtectionPolicies_Get", "", ""), ("BackupPolicies_List", "value[].", "")),
    "ProtectionPolicies_Get": (("ProtectionPolicies_CreateOrUpdate", "", ""), ("BackupPolicies_List", "value[].", "")),
    "BackupPolicies_List": (("ProtectionPolicies_Get", "", "value[]."), ("ProtectionPolicies_CreateOrUpdate", "", "value[].")),
    "BackupResourceStorageConfigsNonCRR_Get": (("BackupResourceStorageConfigsNonCRR_Update", "", ""),),
    "BackupResourceStorageConfigsNonCRR_Update": (("BackupResourceStorageConfigsNonCRR_Get", "", ""),),
    "ProtectedItems_Get": (("BackupProtectedItems_List", "value[].", ""),),
    "BackupProtectedItems_List": (("ProtectedItems_Get", "", "value[]."),),
    "BackupResourceVaultConfigs_Get": (("BackupResourceVaultConfigs_Update", "", ""),),
    "BackupResourceVaultConfigs_Update": (("BackupResourceVaultConfigs_Get", "", ""),),
}  # fmt: skip


def evidence_paths(operation: str, aliases: bool = True) -> set[str]:
    """The keys Azure is shown to send for an operation: every vendored recording of it (2xx), its
    official examples of newer api-versions, and those of the operations answering the same resource."""
    paths: set[str] = set()
    if aliases:
        for other, strip, add in SAME_RESOURCE.get(operation, ()):
            paths |= {
                add + p.removeprefix(strip)
                for p in evidence_paths(other, aliases=False)
                if p.startswith(strip)
            }
            paths.discard("")
    for interaction in select(operation=operation):
        if 200 <= interaction.status < 300:
            paths |= key_paths(interaction.body)
    for example, prefix in _examples(operation):
        for answer in example["responses"].values():
            if "body" in answer:
                paths |= key_paths(answer["body"], prefix)
    return paths


def example_headers(operation: str) -> set[str]:
    return {
        name.lower()
        for example, _ in _examples(operation)
        for answer in example["responses"].values()
        for name in answer.get("headers") or {}
    }


def url_shape(url: str) -> str:
    """A header URL reduced to what must agree: its path after the subscription, ids as {id}, lower case."""
    path = urlsplit(url).path
    path = path.split("/resourceGroups/", 1)[-1].split("/resourcegroups/", 1)[-1]
    return GUID.sub("{id}", path).lower()


def compare(
    rec: Interaction, response: requests.Response, *, operation: str = "", theirs_body: Any = None
) -> Any:
    """Status, LRO headers and keys of armsim's answer against a recording (or against `theirs_body`,
    a part of it); armsim's body."""
    operation = operation or rec.operation
    assert response.status_code == rec.status, (
        f"{rec.source}: Azure answered {rec.status}, armsim {response.status_code} {response.text[:400]}"
    )
    got_headers = {k.lower(): v for k, v in response.headers.items()}
    for name in ("location", "azure-asyncoperation"):
        want = rec.header(name)
        assert (name in got_headers) == (want is not None), (
            f"{rec.source}: {name} {'missing' if want else 'sent, Azure sends none'} ({got_headers.get(name)})"
        )
        if want is not None:
            assert url_shape(got_headers[name]) == url_shape(want), f"{rec.source}: {name} points elsewhere"
    retry_after_shown = rec.header("retry-after") is not None or "retry-after" in example_headers(operation)
    if rec.status == 202:
        assert ("retry-after" in got_headers) == retry_after_shown, f"{rec.source}: Retry-After"
    body = response.json() if response.content else None
    if rec.body is None:
        assert body is None, f"{rec.source}: Azure sent no body, armsim sent {body}"
        return body
    assert body is not None, f"{rec.source}: Azure sent a body, armsim none"
    ours, theirs = key_paths(body), key_paths(rec.body if theirs_body is None else theirs_body)
    evidence = evidence_paths(operation)
    unevidenced = sorted(p for p in ours - evidence if p not in OWNED)
    assert not unevidenced, f"{rec.source}: armsim sends keys no evidence of {operation} shows: {unevidenced}"
    excused = LACKING.get((rec.cassette, rec.index), {})
    lacking = sorted(p for p in theirs - ours if p not in excused)
    assert not lacking, f"{rec.source}: keys Azure sent that armsim lacks: {lacking}"
    stale = sorted(p for p in excused if p not in theirs - ours)
    assert not stale, f"{rec.source}: LACKING entries no longer needed (remove them): {stale}"
    return body


def at(body: Any, path: str) -> list[Any]:
    """The values at a dot path ('value[].properties.name'), flattened over lists."""
    values = [body]
    for part in path.split("."):
        many = part.endswith("[]")
        key = part.removesuffix("[]")
        values = [v[key] for v in values if isinstance(v, dict) and key in v]
        if many:
            values = [x for v in values for x in v]
    return values


def same(rec: Interaction, body: Any, *paths: str, fold: bool = False) -> None:
    """The values at each path agree with the recording's (as sets; case-folded when `fold`)."""
    for path in paths:
        want, got = at(rec.body, path), at(body, path)
        if fold:
            want, got = [str(w).lower() for w in want], [str(g).lower() for g in got]
        dump = lambda v: json.dumps(v, sort_keys=True)  # noqa: E731
        assert sorted(map(dump, got)) == sorted(map(dump, want)), (
            f"{rec.source}: {path}: Azure {want}, armsim {got}"
        )


# -- the scene: armsim set up as the recording's situation ---------------------------------------
@dataclass
class Scene:
    sim: Sandbox
    location: str
    token: str = ""

    def __post_init__(self) -> None:
        self.token = self.sim.credential().get_token(ARM_SCOPE).token
        self.sim.clock(speed=0)
        self.sim.seed(
            subscriptions=[S], resourceGroups=[{"subscriptionId": S, "name": RG, "location": self.location}]
        )

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, str] | None = None,
        ok: tuple[int, ...] = (),
    ) -> requests.Response:
        provider = (
            "Microsoft.Network"
            if "/Microsoft.Network/" in path
            else "Microsoft.Compute"
            if "/Microsoft.Compute/" in path
            else "Microsoft.Storage"
            if "/microsoft.storage/" in path.lower()
            else "backup"
            if re.search(r"/vaults/[^/]+/", path) or "/backupStatus" in path
            else "Microsoft.RecoveryServices/vaults"
        )
        response = requests.request(
            method,
            self.sim.url + path,
            params={**(query or {}), "api-version": API[provider]},
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            verify=str(self.sim.ca_path),
            timeout=30,
        )
        if ok:
            assert response.status_code in ok, (
                f"setup {method} {path}: {response.status_code} {response.text}"
            )
        return response

    def replay(self, rec: Interaction, body: Any = ..., path: str | None = None) -> requests.Response:
        """The recorded request again (its path as recorded, its query but the api-version)."""
        query = {k: v for k, v in rec.query.items() if k != "api-version"}
        raw_path = urlsplit(rec.uri).path
        return self.call(rec.method, path or raw_path, rec.request_body if body is ... else body, query)

    # -- resources ---------------------------------------------------------------------------
    def vault(self) -> None:
        self.call(
            "PUT",
            VAULT_ID,
            {"location": self.location, "sku": {"name": "Standard"}, "properties": {}},
            ok=(201,),
        )

    def vm(self, model: Interaction | None = None, agent: str = "Ready", name: str = VM) -> None:
        """A VM made from a recorded GET of one (name, size, image, disks as recorded; by default the
        disk-exclusion VM with three data disks)."""
        model = model or recorded("disk_exclusion", 25)
        vm_id = VM_ID.rsplit("/", 1)[0] + f"/{name}"
        body = {k: copy.deepcopy(v) for k, v in model.body.items() if k in ("location", "tags", "properties")}
        body["location"] = self.location
        props = body["properties"]
        for read_only in ("vmId", "provisioningState", "instanceView"):
            props.pop(read_only, None)
        props["storageProfile"]["imageReference"].pop("exactVersion", None)
        for disk in [props["storageProfile"]["osDisk"], *props["storageProfile"]["dataDisks"]]:
            disk["managedDisk"].pop("id", None)  # the CLI sent the storage type; Azure names the disk
            disk.pop("toBeDetached", None)
        props["osProfile"]["adminPassword"] = "Recorded-2019!"
        if name != VM:  # another VM like the recorded one: its own computer and disk names
            props["osProfile"]["computerName"] = name
            storage = props["storageProfile"]
            storage["osDisk"]["name"] = storage["osDisk"]["name"].replace(VM, name)
            for disk in storage["dataDisks"]:
                disk["name"] = f"{name}-{disk['name']}"
        self.nics(props, name)
        self.call("PUT", vm_id, body, ok=(200, 201))
        if agent != "Ready":
            self.sim.control("POST", "/vms/state", {"id": vm_id, "agent": agent})

    def nics(self, props: dict[str, Any], name: str) -> None:
        """The NICs the recorded model names (armsim checks a VM's NICs): each in a VNet and subnet named
        as `az vm create` named them (the recorded NIC, disk_exclusion#572), with the CLI's default
        10.0.0.0/16 and 10.0.0.0/24."""
        group = VM_ID.split("/providers/", maxsplit=1)[0]
        for nic in (props.get("networkProfile") or {}).get("networkInterfaces") or []:
            nic_name = nic["id"].rsplit("/", 1)[-1].replace(VM, name)
            nic["id"] = f"{group}/providers/Microsoft.Network/networkInterfaces/{nic_name}"
            vnet = f"{group}/providers/Microsoft.Network/virtualNetworks/{name}VNET"
            subnet = {"name": f"{name}Subnet", "properties": {"addressPrefix": "10.0.0.0/24"}}
            vnet_body = {
                "location": self.location,
                "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}, "subnets": [subnet]},
            }
            self.call("PUT", vnet, vnet_body, ok=(200, 201))
            config = {
                "name": f"ipconfig{name}",
                "properties": {"subnet": {"id": f"{vnet}/subnets/{name}Subnet"}},
            }
            nic_body = {"location": self.location, "properties": {"ipConfigurations": [config]}}
            self.call("PUT", nic["id"], nic_body, ok=(200, 201))

    def policy(self, name: str = "DefaultPolicy", model: Interaction | None = None) -> str:
        """A policy made from a recorded one (by default DefaultPolicy: daily 16:00 UTC, 30 days)."""
        properties = copy.deepcopy((model or recorded("item", 27)).body["properties"])
        for read_only in ("protectedItemsCount", "instantRPDetails"):
            properties.pop(read_only, None)
        self.call("PUT", f"{VAULT_ID}/backupPolicies/{name}", {"properties": properties}, ok=(200,))
        return f"{VAULT_ID}/backupPolicies/{name}"

    def refresh(self) -> None:
        self.call("POST", f"{VAULT_ID}/backupFabrics/Azure/refreshContainers", ok=(202,))

    def protected(self, luns: list[int] | None = None, inclusion: bool = False) -> None:
        """Vault, VM (three data disks), DefaultPolicy, discovery and protection, done."""
        self.vault()
        self.vm()
        self.policy()
        self.refresh()
        props: dict[str, Any] = {
            "protectedItemType": "Microsoft.Compute/virtualMachines",
            "sourceResourceId": VM_ID,
            "policyId": f"{VAULT_ID}/backupPolicies/DefaultPolicy",
        }
        if luns is not None:
            props["extendedProperties"] = {
                "diskExclusionProperties": {"diskLunList": luns, "isInclusionList": inclusion}
            }
        self.call("PUT", ITEM_PATH, {"properties": props}, ok=(202,))
        # The recorded backups were taken minutes after their VM's creation, its agent Ready by then
        # (armsim's agentReadySeconds, 120 s, after which a backup can reach the agent).
        self.advance(180)

    def backed_up(self, luns: list[int] | None = None) -> str:
        """Protected, and one on-demand backup finished; the job's id."""
        self.protected(luns)
        response = self.call("POST", f"{ITEM_PATH}/backup", self.backup_body(), ok=(202,))
        self.advance(3 * 3600)
        return self.job_of(response)

    def backup_body(self, days: int = 30) -> dict[str, Any]:
        """The CLI's trigger body: expiry at midnight UTC `days` ahead of the simulated now."""
        now = dt.datetime.fromisoformat(self.sim.control("GET", "/clock")["now"].replace("Z", "+00:00"))
        expiry = (now + dt.timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
        return {
            "properties": {
                "objectType": "IaasVMBackupRequest",
                "recoveryPointExpiryTimeInUTC": expiry.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            }
        }

    def job_of(self, accepted: requests.Response) -> str:
        status = self.call("GET", urlsplit(accepted.headers["Azure-AsyncOperation"]).path, ok=(200,)).json()
        return str(status["properties"]["jobId"])

    def advance(self, seconds: float) -> None:
        self.sim.clock(advanceSeconds=seconds)


@pytest.fixture
def southeastasia(sim: Sandbox) -> Scene:
    sim.configure(lroSeconds=0, snapshotSeconds=20, transferSeconds=3600, scheduledBackups=False)
    return Scene(sim, "southeastasia")


@pytest.fixture
def westus(sim: Sandbox) -> Scene:
    sim.configure(lroSeconds=0, snapshotSeconds=20, transferSeconds=3600, scheduledBackups=False)
    return Scene(sim, "westus")


def vault_path(rec: Interaction, tail: str) -> str:
    """The recorded vault's path with another tail (for ids armsim issues itself)."""
    return urlsplit(rec.uri).path.split("/vaults/", 1)[0] + f"/vaults/{VAULT}/{tail}"


# -- jobs ------------------------------------------------------------------------------------------
def check_job(rec: Interaction, body: Any, *, tasks: bool = True) -> None:
    """A job's discriminators, names, tasks, propertyBag keys and formats agree with the recording."""
    props, theirs = body["properties"], rec.body["properties"]
    same(rec, body, "type", "properties.jobType", "properties.backupManagementType", "properties.operation")
    same(rec, body, "properties.status", "properties.entityFriendlyName", "properties.virtualMachineVersion")
    if "containerName" in theirs and not theirs["containerName"].startswith(";"):
        same(rec, body, "properties.containerName")
    assert DURATION.match(props["duration"]), props["duration"]
    assert all(ISO_TIME.match(props[k]) for k in ("startTime", "endTime") if k in props), props
    assert ("endTime" in props) == ("endTime" in theirs)
    if "extendedInfo" in theirs:
        extended = props["extendedInfo"]
        if tasks:
            # Azure has written the second task both ways: "Transfer data to vault" (Jul-Oct 2019, and
            # the official example) and "Transfer Data to Vault" (Dec 2019); armsim follows the former.
            same(rec, body, "properties.extendedInfo.tasksList[].taskId", fold=True)
            same(rec, body, "properties.extendedInfo.tasksList[].status")
        assert all(t["duration"] == "PT0S" for t in extended["tasksList"]), (
            "Azure reports task durations as PT0S"
        )
        bag, their_bag = extended["propertyBag"], theirs["extendedInfo"]["propertyBag"]
        assert set(bag) - {"Recovery Point Id"} == set(their_bag), (bag, their_bag)
        for key, value in their_bag.items():
            if BAG_TIME.match(value):
                assert BAG_TIME.match(bag[key]), f"{key}: {bag[key]}"
            if key.endswith("Name"):
                assert bag[key] == value, f"{key}: Azure {value!r}, armsim {bag[key]!r}"


@pytest.fixture
def triggered(southeastasia: Scene) -> tuple[Scene, str]:
    """The disk-exclusion recording: a Windows VM with three data disks, LUN 1 excluded, DefaultPolicy,
    and an on-demand backup just triggered (replayed from the recording's POST)."""
    scene = southeastasia
    scene.protected(luns=[1])
    trigger = recorded("disk_exclusion", 77)
    response = scene.replay(trigger, body=scene.backup_body())
    compare(trigger, response)
    return scene, scene.job_of(response)


def test_backup_job_while_the_snapshot_runs(triggered: tuple[Scene, str]) -> None:
    scene, job = triggered
    scene.advance(1)
    for rec in (recorded("disk_exclusion", 80), recorded("job", 90)):
        body = compare(rec, scene.replay(rec, path=vault_path(rec, f"backupJobs/{job}")))
        check_job(rec, body)
        assert "Backup Size" not in body["properties"]["extendedInfo"]["propertyBag"], "only once completed"


def test_backup_job_just_triggered(triggered: tuple[Scene, str]) -> None:
    """Azure showed both tasks NotStarted for about a second after the trigger; armsim starts the
    snapshot at once. The job is InProgress either way, which is what readers act on."""
    scene, job = triggered
    rec = recorded("rp", 85)
    body = compare(rec, scene.replay(rec, path=vault_path(rec, f"backupJobs/{job}")))
    check_job(rec, body, tasks=False)
    assert [t["status"] for t in body["properties"]["extendedInfo"]["tasksList"]] == [
        "InProgress",
        "NotStarted",
    ]


def test_backup_job_between_snapshot_and_transfer(triggered: tuple[Scene, str]) -> None:
    """Azure queued the transfer (NotStarted) for minutes after the snapshot; armsim starts it as the
    snapshot ends. Same keys; the job is InProgress in both."""
    scene, job = triggered
    scene.advance(20)
    rec = recorded("disk_exclusion", 97)
    body = compare(rec, scene.replay(rec, path=vault_path(rec, f"backupJobs/{job}")))
    check_job(rec, body, tasks=False)
    assert [t["status"] for t in body["properties"]["extendedInfo"]["tasksList"]] == [
        "Completed",
        "InProgress",
    ]


def test_backup_job_while_the_transfer_runs(triggered: tuple[Scene, str]) -> None:
    scene, job = triggered
    scene.advance(600)
    for rec in (recorded("disk_exclusion", 103), recorded("job", 113)):
        check_job(rec, compare(rec, scene.replay(rec, path=vault_path(rec, f"backupJobs/{job}"))))


def test_backup_job_completed(triggered: tuple[Scene, str]) -> None:
    scene, job = triggered
    scene.advance(3 * 3600)
    rec = recorded("disk_exclusion", 219)
    body = compare(rec, scene.replay(rec, path=vault_path(rec, f"backupJobs/{job}")))
    check_job(rec, body)
    bag = body["properties"]["extendedInfo"]["propertyBag"]
    assert re.fullmatch(r"\d+ MB", bag["Backup Size"]), bag
    # The OS disk and the included data disks, '; '-separated; the excluded ones likewise (the VM's
    # disks have the recorded names).
    their_bag = rec.body["properties"]["extendedInfo"]["propertyBag"]
    assert bag["Backed-up disk(s)"] == their_bag["Backed-up disk(s)"]
    assert bag["Excluded disk(s)"] == their_bag["Excluded disk(s)"] == "mydisk2"
    assert body["properties"]["extendedInfo"]["internalPropertyBag"] == {"IsInstantRpJob": "True"}


def test_backup_job_completed_without_disk_exclusion(westus: Scene) -> None:
    """test_backup_job (Jul 2019): no exclusion, so no disk lists in the propertyBag."""
    scene = westus
    scene.protected()
    response = scene.call("POST", f"{ITEM_PATH}/backup", scene.backup_body(), ok=(202,))
    job = scene.job_of(response)
    scene.advance(3 * 3600)
    rec = recorded("job", 228)
    body = compare(rec, scene.replay(rec, path=vault_path(rec, f"backupJobs/{job}")))
    check_job(rec, body)


def test_expiry_in_the_property_bag_is_the_requested_one_in_azures_format(
    triggered: tuple[Scene, str],
) -> None:
    """'Recovery Point Expiry Time in UTC': 'M/d/yyyy h:mm:ss AM' of the recoveryPointExpiryTimeInUTC
    the trigger asked for (recorded: 2020-01-29T00:00:00.000Z -> '1/29/2020 12:00:00 AM')."""
    scene, job = triggered
    asked = scene.backup_body()["properties"]["recoveryPointExpiryTimeInUTC"]
    bag = scene.call("GET", f"{VAULT_ID}/backupJobs/{job}", ok=(200,)).json()["properties"]["extendedInfo"][
        "propertyBag"
    ]
    expiry = dt.datetime.fromisoformat(asked.replace("Z", "+00:00"))
    assert (
        bag["Recovery Point Expiry Time in UTC"] == f"{expiry.month}/{expiry.day}/{expiry.year} 12:00:00 AM"
    )
    recorded_trigger = recorded("disk_exclusion", 77).request_body["properties"][
        "recoveryPointExpiryTimeInUTC"
    ]
    recorded_bag = recorded("disk_exclusion", 80).body["properties"]["extendedInfo"]["propertyBag"]
    assert (recorded_trigger, recorded_bag["Recovery Point Expiry Time in UTC"]) == (
        "2020-01-29T00:00:00.000Z",
        "1/29/2020 12:00:00 AM",
    )


def test_job_lists_carry_no_container_name(westus: Scene) -> None:
    scene = westus
    scene.protected()
    listed = scene.call("GET", f"{VAULT_ID}/backupJobs", ok=(200,)).json()["value"]
    assert listed and all("containerName" not in j["properties"] for j in listed)


def test_no_evidence_shows_the_owned_job_keys() -> None:
    """isUserTriggered and the propertyBag's 'Recovery Point Id' appear in no recording and no example:
    the two tests below assert armsim does not send them either (issue 10 item 3, the product's change)."""
    evidence = evidence_paths("JobDetails_Get") | evidence_paths("BackupJobs_List")
    assert not set(OWNED) & evidence


def test_jobs_carry_no_is_user_triggered(triggered: tuple[Scene, str]) -> None:
    scene, job = triggered
    scene.advance(3 * 3600)
    detail = scene.call("GET", f"{VAULT_ID}/backupJobs/{job}", ok=(200,)).json()["properties"]
    listed = scene.call("GET", f"{VAULT_ID}/backupJobs", ok=(200,)).json()["value"]
    assert "isUserTriggered" not in detail
    assert all("isUserTriggered" not in j["properties"] for j in listed)


def test_job_property_bag_carries_no_recovery_point_id(triggered: tuple[Scene, str]) -> None:
    scene, job = triggered
    scene.advance(3 * 3600)
    detail = scene.call("GET", f"{VAULT_ID}/backupJobs/{job}", ok=(200,)).json()["properties"]
    assert "Recovery Point Id" not in detail["extendedInfo"]["propertyBag"]


def test_management_jobs(southeastasia: Scene) -> None:
    """ConfigureBackup (enable, change of exclusion or policy), DisableBackup, DeleteBackupData and
    Undelete jobs: no tasks, their propertyBag keys, containerName as the Dec 2019 GETs carry it."""
    scene = southeastasia
    scene.vault()
    scene.vm()
    scene.policy()
    scene.policy("clitest-item000007")
    scene.refresh()

    def job_after(accepted: requests.Response, rec: Interaction) -> Any:
        scene.advance(60)
        body = compare(rec, scene.replay(rec, path=vault_path(rec, f"backupJobs/{scene.job_of(accepted)}")))
        check_job(rec, body)
        return body

    enable = scene.replay(recorded("disk_exclusion", 41))
    job_after(enable, recorded("disk_exclusion", 62))
    job_after(enable, recorded("job", 84))
    change = scene.replay(recorded("disk_exclusion", 65))
    job_after(change, recorded("disk_exclusion", 74))
    policy = scene.replay(recorded("item", 160))
    body = job_after(policy, recorded("item", 172))
    # Azure wrote this job's containerName with a leading ';' (';iaasvmcontainerv2;rg;vm'), the
    # others without; armsim writes 'iaasvmcontainerv2;rg;vm' always.
    assert body["properties"]["containerName"] == f"iaasvmcontainerv2;{RG};{VM}"
    stop = scene.replay(recorded("protection", 101))
    job_after(stop, recorded("protection", 108))
    delete = scene.replay(recorded("softdelete", 88))
    job_after(delete, recorded("softdelete", 96))
    undelete = scene.replay(recorded("softdelete", 99))
    job_after(undelete, recorded("softdelete", 107))


def test_job_lists(westus: Scene) -> None:
    """Lists carry neither containerName nor extendedInfo (recorded, and the official ListJobs)."""
    scene = westus
    scene.protected()
    scene.call("POST", f"{ITEM_PATH}/backup", scene.backup_body(), ok=(202,))
    scene.advance(3 * 3600)
    scene.call("POST", f"{ITEM_PATH}/backup", scene.backup_body(), ok=(202,))
    scene.advance(60)
    everything = recorded("job", 244)
    body = compare(everything, scene.replay(everything))
    assert [j["properties"]["operation"] for j in body["value"]] == ["Backup", "Backup", "ConfigureBackup"]
    for job in body["value"]:
        assert "extendedInfo" not in job["properties"]
        assert DURATION.match(job["properties"]["duration"])
    running = recorded("job", 245)  # $filter=status eq 'InProgress': Azure's one was a restore
    body = compare(running, scene.replay(running))
    assert [j["properties"]["status"] for j in body["value"]] == ["InProgress"]
    for restores in (recorded("job", 246), recorded("job", 247)):
        # This scene restored nothing: the lists are empty (test_armsim_restore_replay.py replays them
        # with a restore).
        response = scene.replay(restores)
        assert response.status_code == 200 and response.json()["value"] == []


# -- operation statuses ------------------------------------------------------------------------------
def check_status(rec: Interaction, body: Any, item_level: requests.Response | None = None) -> None:
    """An operation status: id and name the operation id, times, jobId only when done; the item-level
    status the product reads (operationsStatus) answers the same body as the vault-level one the CLI
    read (backupOperations), as the official ProtectedItemOperationStatus example shows."""
    theirs = rec.body
    assert body["status"] == theirs["status"]
    assert body["id"] == body["name"] and GUID.fullmatch(body["id"])
    assert ISO_TIME.match(body["startTime"])
    if theirs["status"] == "InProgress":
        assert body["endTime"].startswith("0001-01-01T00:00:00"), "Azure's 'not yet' end time"
        assert "properties" not in body
    else:
        assert ISO_TIME.match(body["endTime"])
        same(rec, body, "properties.objectType")
        assert GUID.fullmatch(body["properties"]["jobId"])
    if item_level is not None:
        assert item_level.status_code == 200 and item_level.json() == body


def status_pair(
    scene: Scene, accepted: requests.Response, rec: Interaction
) -> tuple[requests.Response, requests.Response]:
    """The vault-level status (as recorded) and the item-level one (as the product reads it)."""
    operation = urlsplit(accepted.headers["Azure-AsyncOperation"]).path.rsplit("/", 1)[-1]
    vault_level = scene.replay(rec, path=vault_path(rec, f"backupOperations/{operation}"))
    return vault_level, scene.call("GET", urlsplit(accepted.headers["Azure-AsyncOperation"]).path)


@pytest.mark.parametrize(
    ("request_at", "running_at", "done_at"),
    [
        (("disk_exclusion", 41), ("disk_exclusion", 42), ("disk_exclusion", 61)),  # enable, inclusion list
        (("disk_exclusion", 65), ("disk_exclusion", 42), ("disk_exclusion", 73)),  # change the exclusion
        (("item", 160), ("item", 161), ("item", 171)),  # change the policy
        (("protection", 101), ("protection", 102), ("protection", 107)),  # stop, keep data
        (("softdelete", 88), ("softdelete", 89), ("softdelete", 95)),  # delete (soft)
        (("softdelete", 99), ("softdelete", 100), ("softdelete", 106)),  # undelete
    ],
    ids=["enable", "exclusion", "policy", "stop", "delete", "undelete"],
)
def test_protection_changes_and_their_statuses(
    sim: Sandbox, request_at: tuple[str, int], running_at: tuple[str, int], done_at: tuple[str, int]
) -> None:
    sim.configure(lroSeconds=30, scheduledBackups=False)
    scene = Scene(sim, "southeastasia")
    scene.vault()
    scene.vm()
    scene.policy()
    scene.policy("clitest-item000007")
    scene.refresh()
    steps = [
        ("disk_exclusion", 41),
        ("disk_exclusion", 65),
        ("item", 160),
        ("protection", 101),
        ("softdelete", 88),
        ("softdelete", 99),
    ]
    for step in steps[: steps.index(request_at)]:
        scene.replay(recorded(*step))  # the changes before this one, as the recordings made them
        scene.advance(60)
    rec = recorded(*request_at)
    accepted = scene.replay(rec)
    compare(rec, accepted)
    running = recorded(*running_at)
    vault_level, item_level = status_pair(scene, accepted, running)
    check_status(running, compare(running, vault_level), item_level)
    scene.advance(30)
    done = recorded(*done_at)
    vault_level, item_level = status_pair(scene, accepted, done)
    check_status(done, compare(done, vault_level), item_level)


def test_backup_trigger_and_its_status(sim: Sandbox) -> None:
    sim.configure(lroSeconds=5, snapshotSeconds=20, transferSeconds=3600, scheduledBackups=False)
    scene = Scene(sim, "westus")
    scene.protected()
    for trigger, running, done in (
        (recorded("job", 87), recorded("job", 88), recorded("job", 89)),
        (recorded("disk_exclusion", 77), recorded("disk_exclusion", 78), recorded("disk_exclusion", 79)),
    ):
        accepted = scene.replay(trigger, body=scene.backup_body())
        compare(trigger, accepted)
        check_status(
            running,
            compare(running, status_pair(scene, accepted, running)[0]),
            status_pair(scene, accepted, running)[1],
        )
        scene.advance(5)
        check_status(
            done, compare(done, status_pair(scene, accepted, done)[0]), status_pair(scene, accepted, done)[1]
        )
        scene.advance(3 * 3600)


# -- protected items ---------------------------------------------------------------------------------
ITEM_VALUES = (
    "name",
    "type",
    "properties.protectedItemType",
    "properties.backupManagementType",
    "properties.workloadType",
    "properties.friendlyName",
    "properties.containerName",
    "properties.protectionState",
    "properties.protectionStatus",
    "properties.healthStatus",
    "properties.lastBackupStatus",
    "properties.policyName",
    "properties.extendedProperties",
)


def check_items(rec: Interaction, body: Any) -> None:
    """Discriminators, names (lower-case container and item names; the VM's name as written) and
    states of protected items agree; ids agree but for their case, which Azure itself varies."""
    many = "value" in rec.body
    same(rec, body, *(f"value[].{p}" if many else p for p in ITEM_VALUES))
    same(
        rec,
        body,
        *(
            f"value[].{p}" if many else p
            for p in (
                "id",
                "properties.sourceResourceId",
                "properties.virtualMachineId",
                "properties.policyId",
            )
        ),
        fold=True,
    )
    for item in body["value"] if many else [body]:
        props = item["properties"]
        assert ISO_TIME.match(props["lastBackupTime"])
        if not props["lastBackupStatus"]:
            assert props["lastBackupTime"] == "2001-01-01T00:00:00Z", (
                "Azure's 'never' before the first backup"
            )


def test_protected_item_before_its_first_backup(southeastasia: Scene) -> None:
    scene = southeastasia
    scene.vault()
    scene.vm()
    scene.policy()
    scene.vm(name="clitest-vm000004")  # test_backup_item protected two VMs
    scene.refresh()
    scene.replay(recorded("item", 41))
    scene.replay(
        recorded("item", 41),
        path=ITEM_PATH.replace(VM, "clitest-vm000004"),
        body={
            "properties": {
                **recorded("item", 41).request_body["properties"],
                "sourceResourceId": VM_ID.replace(VM, "clitest-vm000004"),
            }
        },
    )
    scene.advance(60)
    for rec in (recorded("item", 153), recorded("item", 150)):
        check_items(rec, compare(rec, scene.replay(rec)))


def test_protected_items_with_disk_exclusion(southeastasia: Scene) -> None:
    scene = southeastasia
    scene.vault()
    scene.vm()
    scene.policy()
    scene.refresh()
    scene.replay(recorded("disk_exclusion", 41))  # inclusion list [0, 1]
    scene.advance(60)
    rec = recorded("disk_exclusion", 63)
    check_items(rec, compare(rec, scene.replay(rec)))
    scene.replay(recorded("disk_exclusion", 65))  # exclude LUN 1
    scene.advance(60)
    scene.call("POST", f"{ITEM_PATH}/backup", scene.backup_body(), ok=(202,))
    scene.advance(3 * 3600)
    rec = recorded("disk_exclusion", 220)
    check_items(rec, compare(rec, scene.replay(rec)))


def test_protected_item_after_a_backup(westus: Scene) -> None:
    scene = westus
    scene.backed_up()
    rec = recorded("job", 229)
    body = compare(rec, scene.replay(rec))
    check_items(rec, body)
    props = body["value"][0]["properties"]
    assert (
        ISO_TIME.match(props["lastRecoveryPoint"]) and props["lastRecoveryPoint"] >= props["lastBackupTime"]
    )


def test_stopped_soft_deleted_and_undeleted_items(southeastasia: Scene) -> None:
    scene = southeastasia
    scene.protected()
    scene.replay(recorded("protection", 101))
    scene.advance(60)
    rec = recorded("protection", 109)
    check_items(rec, compare(rec, scene.replay(rec)))
    deleted_at = scene.sim.control("GET", "/clock")["now"]
    scene.replay(recorded("softdelete", 88))
    scene.advance(17)
    rec = recorded("softdelete", 97)
    body = compare(rec, scene.replay(rec))
    check_items(rec, body)
    props = body["value"][0]["properties"]
    assert props["isScheduledForDeferredDelete"] is True
    # Recorded: deferredDeleteTimeInUTC is when the item was deleted (the DELETE at 13:16:26, the
    # DeleteBackupData job's start), and the remaining time counts down from 14 days as d.hh:mm:ss.fffffff.
    assert props["deferredDeleteTimeInUTC"][:19] == deleted_at[:19]
    assert props["deferredDeleteTimeRemaining"].startswith("13.23:59:43")
    assert re.fullmatch(
        r"\d+\.\d\d:\d\d:\d\d(\.\d{1,7})?", rec.body["value"][0]["properties"]["deferredDeleteTimeRemaining"]
    )
    assert re.fullmatch(r"\d+\.\d\d:\d\d:\d\d(\.\d{1,7})?", props["deferredDeleteTimeRemaining"])
    scene.replay(recorded("softdelete", 99))
    scene.advance(60)
    rec = recorded("softdelete", 110)
    check_items(rec, compare(rec, scene.replay(rec)))


def test_items_not_deleted_carry_no_deferred_delete_flag(southeastasia: Scene) -> None:
    """Recorded: isScheduledForDeferredDelete appears only on a soft-deleted item (true); no other item
    of any recording carries it, not even after an undelete (test_backup_softdelete #110)."""
    scene = southeastasia
    scene.protected()
    rec = recorded("softdelete", 110)
    assert all("isScheduledForDeferredDelete" not in i["properties"] for i in rec.body["value"])
    body = scene.call("GET", f"{VAULT_ID}/backupProtectedItems", ok=(200,)).json()
    assert all("isScheduledForDeferredDelete" not in i["properties"] for i in body["value"])


def test_real_vault_items_have_no_key_armsim_could_not_explain() -> None:
    """Three lists of a real, busy vault (protection cassette): every key of every item is a key armsim
    sends for some item, or one LACKING excuses (healthDetails)."""
    excused = {k.removeprefix("value[].") for k in LACKING["test_backup_disk_exclusion", 220]}
    excused.add("properties.healthDetails[].recommendations[]")
    for rec in (recorded("protection", 19), recorded("protection", 28), recorded("protection", 34)):
        keys = {k.removeprefix("value[].") for k in key_paths(rec.body)} - {"value", "value[]"}
        known = {k.removeprefix("value[].") for k in evidence_paths("BackupProtectedItems_List")}
        assert keys <= known
        simulated = {
            "id", "name", "type", "properties", "properties.friendlyName", "properties.virtualMachineId",
            "properties.protectionStatus", "properties.protectionState", "properties.healthStatus",
            "properties.lastBackupStatus", "properties.lastBackupTime", "properties.protectedItemDataId",
            "properties.protectedItemType", "properties.backupManagementType", "properties.workloadType",
            "properties.containerName", "properties.sourceResourceId", "properties.policyId",
            "properties.policyName", "properties.lastRecoveryPoint",
        }  # fmt: skip
        assert keys - simulated <= excused, keys - simulated - excused
        for item in rec.body["value"]:
            props = item["properties"]
            # protectionStatus follows the last backup, as armsim answers it.
            assert props["protectionStatus"] == (
                "Unhealthy" if props["lastBackupStatus"] == "Failed" else "Healthy"
            )


# -- policies ----------------------------------------------------------------------------------------
def test_policy_put_get_and_list(southeastasia: Scene) -> None:
    scene = southeastasia
    scene.vault()
    put = recorded("policy", 2)
    body = compare(put, scene.replay(put))
    same(put, body, "name", "type", "properties.schedulePolicy", "properties.retentionPolicy")
    same(
        put,
        body,
        "properties.timeZone",
        "properties.instantRpRetentionRangeInDays",
        "properties.protectedItemsCount",
    )
    # Sep 2019 answered without instantRPDetails, Oct 2019 (test_backup_item) with it; armsim follows Oct.
    assert body["properties"]["instantRPDetails"] == {}
    get = recorded("item", 27)
    scene.policy("DefaultPolicy", get)
    body = compare(get, scene.replay(get))
    same(
        get,
        body,
        "name",
        "type",
        "properties.backupManagementType",
        "properties.schedulePolicy",
        "properties.retentionPolicy",
    )
    same(
        get,
        body,
        "properties.timeZone",
        "properties.instantRpRetentionRangeInDays",
        "properties.protectedItemsCount",
    )
    listed = recorded("policy", 105)
    scene.policy("clitest-item000004", put)
    # Azure's list also held an SQL policy (HourlyLogBackup, AzureWorkload): armsim simulates AzureIaasVM
    # policies only, so the comparison is with the list's AzureIaasVM ones.
    iaasvm = [p for p in listed.body["value"] if p["properties"]["backupManagementType"] == "AzureIaasVM"]
    body = compare(listed, scene.replay(listed), theirs_body={"value": iaasvm})
    assert sorted(p["name"] for p in body["value"]) == sorted(p["name"] for p in iaasvm)


def test_policy_put_from_another_policys_body(westus: Scene) -> None:
    """The CLI read DefaultPolicy (two items) and PUT its body under a new name: Azure ignored the
    request's protectedItemsCount and added instantRPDetails."""
    scene = westus
    scene.protected()
    rec = recorded("item", 147)
    body = compare(rec, scene.replay(rec))
    same(rec, body, "name", "type", "properties", fold=False)


# -- discovery -----------------------------------------------------------------------------------------
def test_refresh_containers_and_its_results(sim: Sandbox) -> None:
    sim.configure(lroSeconds=30)
    scene = Scene(sim, "southeastasia")
    scene.vault()
    scene.vm()
    before = recorded("disk_exclusion", 28)
    assert compare(before, scene.replay(before)) == {"value": []}, "not discovered before a refresh"
    refresh = recorded("disk_exclusion", 29)
    accepted = scene.replay(refresh)
    compare(refresh, accepted)
    running = recorded("disk_exclusion", 30)
    results = urlsplit(accepted.headers["Location"]).path
    compare(running, scene.call("GET", results))
    scene.advance(30)
    done = recorded("disk_exclusion", 39)
    compare(done, scene.call("GET", results))
    status = scene.call("GET", urlsplit(accepted.headers["Azure-AsyncOperation"]).path, ok=(200,)).json()
    assert status["status"] == "Succeeded"
    after = recorded("disk_exclusion", 40)
    body = compare(after, scene.replay(after))
    same(after, body, "value[].type", "value[].properties.protectableItemType")
    same(
        after,
        body,
        "value[].properties.friendlyName",
        "value[].properties.resourceGroup",
        "value[].properties.virtualMachineVersion",
    )
    same(after, body, "value[].properties.backupManagementType", "value[].properties.protectionState")
    same(after, body, "value[].id", "value[].properties.virtualMachineId", fold=True)
    assert body["value"][0]["id"].endswith(f"/protectableItems/vm;iaasvmcontainerv2;{RG};{VM}")


def test_protectable_item_name_is_the_container_name(southeastasia: Scene) -> None:
    """Recorded: a protectable Compute VM is named 'iaasvmcontainerv2;rg;vm' (no 'VM;' prefix)."""
    scene = southeastasia
    scene.vault()
    scene.vm()
    scene.refresh()
    rec = recorded("disk_exclusion", 40)
    same(rec, scene.replay(rec).json(), "value[].name")


def test_refresh_of_july_2019_answered_a_location_only(westus: Scene) -> None:
    """Azure added Azure-AsyncOperation to refreshContainers between July and October 2019 (test_backup_job
    has none, test_backup_item and test_backup_disk_exclusion have it); armsim follows the later answer."""
    scene = westus
    scene.vault()
    july = recorded("job", 20)
    response = scene.replay(july)
    assert response.status_code == 202 and "Location" in response.headers
    assert url_shape(response.headers["Location"]) == url_shape(july.header("location") or "")
    compare(recorded("disk_exclusion", 29), response)


# -- vault and its storage configuration ---------------------------------------------------------------
def test_vault_put_and_get(southeastasia: Scene) -> None:
    """The 2016-06-01 PUT was synchronous (201, no Azure-AsyncOperation); the api-versions the SDK pins
    answer 201 with Azure-AsyncOperation (official PUTVault example: 200/201 with the vault)."""
    scene = southeastasia
    put = recorded("disk_exclusion", 0)
    response = scene.replay(put)
    assert response.status_code == 201
    body = response.json()
    assert not key_paths(body) - evidence_paths("Vaults_CreateOrUpdate")
    assert key_paths(put.body) <= key_paths(body)
    same(put, body, "name", "type", "location", "properties.provisioningState")
    # The PUT answered sku {name: Standard} in 2016-06-01; the official PUTVault example of 2026 answers
    # the same request with {name: RS0, tier: Standard}, as armsim does (the newer example wins).
    assert body["sku"] == {"name": "RS0", "tier": "Standard"}
    get = recorded("disk_exclusion", 26)
    body = compare(get, scene.replay(get))
    same(get, body, "name", "type", "location", "properties.provisioningState")
    assert body["etag"].startswith("W/\"datetime'") and body["etag"] == response.json()["etag"]


def test_storage_configuration(westus: Scene) -> None:
    scene = westus
    scene.vault()
    first = recorded("vault", 7)
    body = compare(first, scene.replay(first))
    same(first, body, "name", "type", "properties")
    change = recorded("vault", 8)
    body = compare(change, scene.replay(change))
    same(change, body, "name", "type", "properties")
    after = recorded("vault", 10)
    body = compare(after, scene.replay(after))
    same(after, body, "properties")


# -- recovery points -------------------------------------------------------------------------------------
def check_point(rec: Interaction, body: Any) -> None:
    many = "value" in rec.body
    values = (
        "type",
        "properties.objectType",
        "properties.recoveryPointType",
        "properties.isManagedVirtualMachine",
    )
    same(rec, body, *(f"value[].{p}" if many else p for p in values))
    same(
        rec,
        body,
        *(f"value[].{p}" if many else p for p in ("properties.osType", "properties.virtualMachineSize")),
    )
    config = "properties.recoveryPointDiskConfiguration"
    disks = [f"{config}.numberOfDisksIncludedInBackup", f"{config}.numberOfDisksAttachedToVm"]
    if not many:  # a GET lists the disks: the OS disk at LUN -1, then the data disks by LUN
        disks += [f"{config}.includedDiskList", f"{config}.excludedDiskList"]
    same(rec, body, *(f"value[].{p}" if many else p for p in disks))
    assert (config.split(".")[1] in json.dumps(body)) == (config.split(".")[1] in json.dumps(rec.body))
    for point in body["value"] if many else [body]:
        assert re.fullmatch(r"\d+", point["name"]), "recovery point names are decimal numbers"
        assert ISO_TIME.match(point["properties"]["recoveryPointTime"])


def test_recovery_points_with_disk_exclusion(southeastasia: Scene) -> None:
    scene = southeastasia
    scene.backed_up(luns=[1])
    listed = recorded("disk_exclusion", 221)
    body = compare(listed, scene.replay(listed))
    check_point(listed, body)
    point = body["value"][0]["name"]
    got = recorded("disk_exclusion", 226)
    check_point(got, compare(got, scene.replay(got, path=f"{ITEM_PATH}/recoveryPoints/{point}")))


def test_recovery_point_lists_carry_no_disk_lists(southeastasia: Scene) -> None:
    scene = southeastasia
    scene.backed_up(luns=[1])
    body = scene.call("GET", f"{ITEM_PATH}/recoveryPoints", ok=(200,)).json()
    assert body["value"] and not key_paths(body) & set(_RP_LISTS)


def test_recovery_points_carry_no_recovery_point_properties(southeastasia: Scene) -> None:
    scene = southeastasia
    scene.backed_up()
    body = scene.call("GET", f"{ITEM_PATH}/recoveryPoints", ok=(200,)).json()
    assert body["value"] and all("recoveryPointProperties" not in p["properties"] for p in body["value"])


def test_recovery_points_without_disk_exclusion(westus: Scene) -> None:
    scene = westus
    scene.backed_up()
    listed = recorded("job", 231)
    body = compare(listed, scene.replay(listed))
    check_point(listed, body)
    got = recorded("job", 236)
    point = body["value"][0]["name"]
    check_point(got, compare(got, scene.replay(got, path=f"{ITEM_PATH}/recoveryPoints/{point}")))


# -- virtual machines ---------------------------------------------------------------------------------------
def test_vm_get_with_instance_view_right_after_creation(southeastasia: Scene) -> None:
    """Right after creation Azure reported the agent Not Ready (version Unknown, 'VM status blob is
    found but not yet populated.'); so does armsim for agentReadySeconds after a VM's creation."""
    scene = southeastasia
    rec = recorded("disk_exclusion", 8)
    scene.vm(rec)
    body = compare(rec, scene.replay(rec))
    same(
        rec,
        body,
        "name",
        "type",
        "location",
        "properties.hardwareProfile",
        "properties.storageProfile.osDisk.osType",
    )
    same(rec, body, "properties.instanceView.hyperVGeneration", "properties.instanceView.statuses[].code")
    same(
        rec,
        body,
        "properties.instanceView.vmAgent.vmAgentVersion",
        "properties.instanceView.vmAgent.statuses[].code",
    )
    same(
        rec,
        body,
        "properties.instanceView.vmAgent.statuses[].level",
        "properties.instanceView.vmAgent.statuses[].displayStatus",
    )
    same(rec, body, "properties.instanceView.disks[].name", "properties.provisioningState")
    same(rec, body, "properties.instanceView.vmAgent.statuses[].message")
    scene.advance(120)
    agent = scene.replay(rec).json()["properties"]["instanceView"]["vmAgent"]
    assert agent["statuses"][0]["displayStatus"] == "Ready"


def test_a_new_vm_reports_its_agent_not_ready_at_first(southeastasia: Scene) -> None:
    """Every GET with instanceView the recordings make right after `az vm create` (one in each of the
    ten cassettes; disk_exclusion #8 is vendored) shows the agent Not Ready, version Unknown."""
    scene = southeastasia
    rec = recorded("disk_exclusion", 8)
    scene.vm(rec)  # created through ARM; its agent left to armsim
    agent = scene.replay(rec).json()["properties"]["instanceView"]["vmAgent"]
    assert (agent["vmAgentVersion"], agent["statuses"][0]["displayStatus"]) == ("Unknown", "Not Ready")
    assert (
        agent["statuses"][0]["message"]
        == rec.body["properties"]["instanceView"]["vmAgent"]["statuses"][0]["message"]
    )


def test_vm_get_with_data_disks(southeastasia: Scene) -> None:
    scene = southeastasia
    rec = recorded("disk_exclusion", 25)
    scene.vm(rec)
    body = compare(rec, scene.replay(rec))
    same(rec, body, "properties.storageProfile.dataDisks[].lun", "properties.storageProfile.dataDisks[].name")
    same(
        rec,
        body,
        "properties.storageProfile.dataDisks[].createOption",
        "properties.storageProfile.dataDisks[].toBeDetached",
    )
    same(rec, body, "properties.storageProfile.dataDisks[].managedDisk.id", fold=True)


def test_container_and_item_names_are_lower_case_and_the_friendly_name_keeps_its_case(westus: Scene) -> None:
    """A real vault's item (test_backup_protection #34): VM enableVMBkpTest of resource group riteshcRG
    is container and item 'iaasvmcontainerv2;riteshcrg;enablevmbkptest' in names and ids, whatever the
    case of the request's names; friendlyName, sourceResourceId and virtualMachineId keep the VM's case."""
    scene = westus
    rec = recorded("protection", 34)
    theirs = next(v for v in rec.body["value"] if v["properties"]["friendlyName"] == "enableVMBkpTest")
    vault_id = (
        f"/subscriptions/{S}/resourceGroups/ayujasvm1/providers/Microsoft.RecoveryServices/vaults/phaniktRsv1"
    )
    vm_id = f"/subscriptions/{S}/resourceGroups/riteshcRG/providers/Microsoft.Compute/virtualMachines/enableVMBkpTest"
    scene.sim.seed(
        resourceGroups=[{"subscriptionId": S, "name": "ayujasvm1", "location": "westus"}],
        vms=[
            {
                "subscriptionId": S,
                "resourceGroup": "riteshcRG",
                "name": "enableVMBkpTest",
                "location": "westus",
            }
        ],
    )
    scene.call(
        "PUT", vault_id, {"location": "westus", "sku": {"name": "Standard"}, "properties": {}}, ok=(201,)
    )
    policy = recorded("item", 27).body["properties"]
    policy = {k: v for k, v in policy.items() if k not in ("protectedItemsCount", "instantRPDetails")}
    scene.call("PUT", f"{vault_id}/backupPolicies/srbanspolearc", {"properties": policy}, ok=(200,))
    scene.call("POST", f"{vault_id}/backupFabrics/Azure/refreshContainers", ok=(202,))
    names = "iaasvmcontainerv2;riteshcRG;enableVMBkpTest"  # as a client spells them from the VM's id
    item = f"{vault_id}/backupFabrics/Azure/protectionContainers/IaasVMContainer;{names}/protectedItems/VM;{names}"
    body = {"properties": {"protectedItemType": "Microsoft.Compute/virtualMachines", "sourceResourceId": vm_id,
                           "policyId": f"{vault_id}/backupPolicies/srbanspolearc"}}  # fmt: skip
    scene.call("PUT", item, body, ok=(202,))
    scene.advance(60)
    scene.call("POST", f"{item}/backup", scene.backup_body(), ok=(202,))
    scene.advance(3 * 3600)
    listed = scene.call("GET", f"{vault_id}/backupProtectedItems", ok=(200,))
    ours = compare(rec, listed, theirs_body={"value": [theirs]})["value"][0]
    for key in ("name", "type"):
        assert ours[key] == theirs[key]
    assert ours["id"].split("/protectionContainers/")[1] == theirs["id"].split("/protectionContainers/")[1]
    for key in ("friendlyName", "containerName", "sourceResourceId", "virtualMachineId", "protectedItemType"):
        assert ours["properties"][key] == theirs["properties"][key], key
    got = scene.call("GET", item, ok=(200,)).json()  # the item answers to any case of its names
    assert got["name"] == theirs["name"]
