"""What the product reads from a VM: VmFacts from real SDK models, and VM ids from event subjects."""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.mgmt.compute.models import VirtualMachine
from hypothesis import given, settings
from hypothesis import strategies as st

from autopilot.azure.vms import VmFacts, vm_id_from_subject
from autopilot.names import same_id
from tests.examples_support import example_path, needs_examples

SUB = "00000000-0000-0000-0000-000000000001"
VM_ID = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/vm-web-01"


def _example_body(name: str) -> dict[str, Any]:
    data = json.loads(example_path("compute", name).read_text(encoding="utf-8"))
    body: dict[str, Any] = data["responses"]["200"]["body"]
    return body


def _official_vm(with_instance_view: bool) -> VirtualMachine:
    body = _example_body("VirtualMachine_Get.json")
    if with_instance_view:
        body["properties"]["instanceView"] = _example_body("VirtualMachine_Get_InstanceView.json")
    return VirtualMachine(body)


# --- the official examples, through the SDK's own models ----------------------------------------


@needs_examples
def test_official_example_names_container_and_item() -> None:
    facts = VmFacts.from_model(_official_vm(with_instance_view=False))
    assert (facts.resource_group, facts.name) == ("myResourceGroup", "myVM")
    assert facts.container_name == "IaasVMContainer;iaasvmcontainerv2;myResourceGroup;myVM"
    assert facts.item_name == "VM;iaasvmcontainerv2;myResourceGroup;myVM"


@needs_examples
def test_official_example_location_is_normalised() -> None:
    facts = VmFacts.from_model(_official_vm(with_instance_view=False))
    assert facts.location == "westus"  # "West US" in the example


@needs_examples
def test_official_example_data_disks_keep_their_luns() -> None:
    facts = VmFacts.from_model(_official_vm(with_instance_view=False))
    assert [(d.lun, d.name) for d in facts.data_disks] == [(0, "myDataDisk0"), (1, "myDataDisk1")]
    assert facts.data_disks[1].managed_disk_id is not None
    assert facts.data_disks[1].managed_disk_id.endswith("/disks/myDataDisk1")


@needs_examples
def test_official_example_without_instance_view_has_unknown_agent_and_power() -> None:
    facts = VmFacts.from_model(_official_vm(with_instance_view=False))
    assert facts.agent_status == "Unknown"
    assert facts.power_state == "unknown"
    assert facts.provisioning_state == "Succeeded"


@needs_examples
def test_official_instance_view_gives_agent_power_and_provisioning() -> None:
    facts = VmFacts.from_model(_official_vm(with_instance_view=True))
    assert facts.agent_status == "Ready"
    assert facts.agent_version == "2.7.41491.949"
    assert facts.power_state == "running"
    assert facts.provisioning_state == "Succeeded"


@needs_examples
def test_official_example_keeps_tags_and_image() -> None:
    facts = VmFacts.from_model(_official_vm(with_instance_view=False))
    assert facts.tags == {"myTag1": "tagValue1"}
    assert facts.image["publisher"] == "MicrosoftWindowsServer"
    assert facts.time_created is not None and facts.time_created.year == 2021


@needs_examples
def test_official_example_is_a_windows_vm() -> None:
    facts = VmFacts.from_model(_official_vm(with_instance_view=False))
    assert facts.os_type == "Windows"


@needs_examples
def test_official_example_is_not_trusted_launch() -> None:
    facts = VmFacts.from_model(_official_vm(with_instance_view=False))
    assert facts.trusted_launch is False  # securityType Standard


# --- hand-built VMs -------------------------------------------------------------------------


def _vm_json(
    *,
    vm_id: str = VM_ID,
    location: str = "westeurope",
    os_type: str | None = "Linux",
    image: dict[str, str] | None = None,
    security_type: str | None = None,
    instance_view: dict[str, Any] | None = None,
    data_disks: list[dict[str, Any]] | None = None,
    provisioning_state: str = "Succeeded",
) -> dict[str, Any]:
    os_disk: dict[str, Any] = {"name": "osdisk", "createOption": "FromImage"}
    if os_type is not None:
        os_disk["osType"] = os_type
    properties: dict[str, Any] = {
        "storageProfile": {
            "imageReference": image
            or {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"},
            "osDisk": os_disk,
            "dataDisks": data_disks or [],
        },
        "provisioningState": provisioning_state,
    }
    if security_type is not None:
        properties["securityProfile"] = {"securityType": security_type}
    if instance_view is not None:
        properties["instanceView"] = instance_view
    return {
        "id": vm_id,
        "name": vm_id.rsplit("/", 1)[-1],
        "type": "Microsoft.Compute/virtualMachines",
        "location": location,
        "tags": {"backup-policy": "gold"},
        "properties": properties,
    }


def _view(agent: dict[str, Any] | None, *codes: str) -> dict[str, Any]:
    view: dict[str, Any] = {
        "statuses": [{"code": code, "level": "Info", "displayStatus": code} for code in codes]
    }
    if agent is not None:
        view["vmAgent"] = agent
    return view


def _agent(display_status: str, version: str = "2.7.41491.1102") -> dict[str, Any]:
    return {
        "vmAgentVersion": version,
        "statuses": [
            {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": display_status}
        ],
    }


def _facts(**kwargs: Any) -> VmFacts:
    return VmFacts.from_model(VirtualMachine(_vm_json(**kwargs)))


RUNNING = ("ProvisioningState/succeeded", "PowerState/running")


def test_agent_ready() -> None:
    facts = _facts(instance_view=_view(_agent("Ready", "2.11.1.5"), *RUNNING))
    assert (facts.agent_status, facts.agent_version) == ("Ready", "2.11.1.5")


def test_agent_not_ready() -> None:
    facts = _facts(instance_view=_view(_agent("Not Ready"), *RUNNING))
    assert facts.agent_status == "NotReady"


def test_agent_reporting_no_status_is_not_ready() -> None:
    facts = _facts(instance_view=_view({"vmAgentVersion": "Unknown", "statuses": []}, *RUNNING))
    assert facts.agent_status == "NotReady"


def test_agent_missing_when_the_instance_view_has_no_vm_agent() -> None:
    facts = _facts(instance_view=_view(None, *RUNNING))
    assert (facts.agent_status, facts.agent_version) == ("Missing", "")


@pytest.mark.parametrize(
    ("code", "power"),
    [
        ("PowerState/running", "running"),
        ("PowerState/stopped", "stopped"),
        ("PowerState/deallocated", "deallocated"),
        ("PowerState/Deallocating", "deallocating"),
    ],
)
def test_power_state_from_the_instance_view(code: str, power: str) -> None:
    facts = _facts(instance_view=_view(_agent("Ready"), "ProvisioningState/succeeded", code))
    assert facts.power_state == power


def test_instance_view_provisioning_state_wins_over_the_model() -> None:
    facts = _facts(
        provisioning_state="Succeeded", instance_view=_view(_agent("Ready"), "ProvisioningState/updating")
    )
    assert facts.provisioning_state == "Updating"


def test_failed_provisioning_state_without_instance_view() -> None:
    assert _facts(provisioning_state="Failed").provisioning_state == "Failed"


def test_failed_provisioning_state_with_an_error_code_in_the_instance_view() -> None:
    facts = _facts(
        provisioning_state="Failed",
        instance_view=_view(
            _agent("Ready"), "ProvisioningState/failed/InternalOperationError", "PowerState/running"
        ),
    )
    assert facts.provisioning_state == "Failed"


def test_trusted_launch_is_detected() -> None:
    assert _facts(security_type="TrustedLaunch").trusted_launch is True


def test_standard_security_type_is_not_trusted_launch() -> None:
    assert _facts(security_type="Standard").trusted_launch is False


def test_no_security_profile_is_not_trusted_launch() -> None:
    assert _facts().trusted_launch is False


@pytest.mark.parametrize("os_type", ["Linux", "Windows"])
def test_os_type_from_the_os_disk(os_type: str) -> None:
    # The SDK reads osType as an enum; the facts hold its plain value.
    assert _facts(os_type=os_type).os_type == os_type


def test_os_type_from_a_windows_image_when_the_os_disk_does_not_say() -> None:
    image = {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer", "sku": "2022-datacenter"}
    assert _facts(os_type=None, image=image).os_type == "Windows"


def test_os_type_from_a_linux_image_when_the_os_disk_does_not_say() -> None:
    assert _facts(os_type=None).os_type == "Linux"


def test_data_disks_with_luns_and_unmanaged_disks() -> None:
    disks = [
        {
            "lun": 3,
            "name": "data-3",
            "createOption": "Attach",
            "managedDisk": {
                "id": f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/disks/data-3"
            },
        },
        {
            "lun": 0,
            "name": "legacy",
            "createOption": "Empty",
            "vhd": {"uri": "https://acct.blob.core.windows.net/v/d.vhd"},
        },
    ]
    facts = _facts(data_disks=disks)
    assert [(d.lun, d.name) for d in facts.data_disks] == [(3, "data-3"), (0, "legacy")]
    assert facts.data_disks[0].managed_disk_id is not None
    assert facts.data_disks[1].managed_disk_id is None


def test_no_data_disks() -> None:
    assert _facts(data_disks=[]).data_disks == ()


def test_container_and_item_names() -> None:
    facts = _facts()
    assert facts.container_name == "IaasVMContainer;iaasvmcontainerv2;rg-app;vm-web-01"
    assert facts.item_name == "VM;iaasvmcontainerv2;rg-app;vm-web-01"


def test_ids_and_location_from_a_lower_case_id() -> None:
    vm_id = f"/subscriptions/{SUB}/resourcegroups/RG-App/providers/microsoft.compute/virtualmachines/Vm1"
    facts = _facts(vm_id=vm_id, location="East US")
    assert (facts.subscription_id, facts.resource_group, facts.name) == (SUB, "RG-App", "Vm1")
    assert facts.location == "eastus"


def test_same_id_ignores_letter_case() -> None:
    assert same_id(VM_ID, VM_ID.upper())
    assert not same_id(VM_ID, VM_ID + "2")
    assert not same_id(VM_ID, None)


# --- vm_id_from_subject ----------------------------------------------------------------------

PREFIX = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers"


@pytest.mark.parametrize(
    "subject",
    [
        f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/vm-web-01",
        f"/subscriptions/{SUB}/resourcegroups/rg-app/providers/Microsoft.Compute/virtualMachines/vm-web-01",
        f"/subscriptions/{SUB}/ResourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/vm-web-01",
        f"/SUBSCRIPTIONS/{SUB}/RESOURCEGROUPS/rg-app/PROVIDERS/MICROSOFT.COMPUTE/VIRTUALMACHINES/vm-web-01",
    ],
    ids=["canonical", "resourcegroups", "ResourceGroups", "upper"],
)
def test_vm_id_in_any_letter_case_is_canonical(subject: str) -> None:
    assert vm_id_from_subject(subject) == VM_ID


def test_vm_id_keeps_the_names_as_written() -> None:
    subject = f"/subscriptions/{SUB.upper()}/resourcegroups/RG.App(1)/providers/Microsoft.Compute/virtualMachines/VM_1.a"
    assert vm_id_from_subject(subject) == (
        f"/subscriptions/{SUB.upper()}/resourceGroups/RG.App(1)/providers/Microsoft.Compute/virtualMachines/VM_1.a"
    )


@pytest.mark.parametrize(
    "subject",
    [
        pytest.param(
            f"{PREFIX}/Microsoft.Compute/virtualMachines/vm1/extensions/AzureBackupLinux", id="extension"
        ),
        pytest.param(f"{PREFIX}/Microsoft.Compute/virtualMachines/vm1/runCommands/rc", id="run-command"),
        pytest.param(
            f"{PREFIX}/Microsoft.Compute/virtualMachines/vm1/providers/Microsoft.Insights/diagnosticSettings/d",
            id="extension-resource",
        ),
        pytest.param(f"{PREFIX}/Microsoft.Compute/disks/vm1", id="disk"),
        pytest.param(f"{PREFIX}/Microsoft.Compute/virtualMachineScaleSets/vm1", id="scale-set"),
        pytest.param(f"{PREFIX}/Microsoft.Storage/storageAccounts/vm1", id="storage"),
        pytest.param(f"{PREFIX}/Microsoft.ClassicCompute/virtualMachines/vm1", id="classic"),
        pytest.param(f"{PREFIX}/Contoso.Compute/virtualMachines/vm1", id="foreign-provider"),
        pytest.param(f"/subscriptions/{SUB}/resourceGroups/rg-app", id="resource-group"),
        pytest.param(f"/subscriptions/{SUB}", id="subscription"),
    ],
)
def test_other_resources_are_not_vms(subject: str) -> None:
    assert vm_id_from_subject(subject) is None


@pytest.mark.parametrize(
    "subject",
    [
        pytest.param(f"{PREFIX}/Microsoft.Compute/virtualMachines/..", id="dotdot-name"),
        pytest.param(
            f"/subscriptions/{SUB}/resourceGroups/../providers/Microsoft.Compute/virtualMachines/vm1",
            id="dotdot-group",
        ),
        pytest.param(f"{PREFIX}/Microsoft.Compute/virtualMachines/vm%2F..", id="encoded-slash"),
        pytest.param(f"{PREFIX}/Microsoft.Compute/virtualMachines/vm1.", id="name-ends-with-dot"),
        pytest.param(
            f"/subscriptions/{SUB}/resourceGroups/rg./providers/Microsoft.Compute/virtualMachines/vm1",
            id="group-ends-with-dot",
        ),
        pytest.param(f"{PREFIX}/Microsoft.Compute/virtualMachines/vm\u00e9", id="unicode-name"),
        pytest.param(f"{PREFIX}/Microsoft.Compute/virtualMachines/vm\x00", id="nul"),
        pytest.param(f"{PREFIX}/Microsoft.Compute/virtualMachines/vm 1", id="space"),
        pytest.param(f"{PREFIX}/Microsoft.Compute/virtualMachines/vm1?api-version=1", id="query"),
        pytest.param(f"{PREFIX}/Microsoft.Compute/virtualMachines/vm1/", id="trailing-slash"),
        pytest.param(f"{PREFIX}/Microsoft.Compute/virtualMachines/" + "a" * 65, id="name-too-long"),
        pytest.param(f"{PREFIX}/Microsoft.Compute/virtualMachines/" + "a" * 500, id="subject-too-long"),
        pytest.param(f"{PREFIX}/Microsoft.Compute/virtualMachines", id="no-name"),
        pytest.param(f"{PREFIX}/Microsoft.Compute/virtualMachines/", id="empty-name"),
        pytest.param(f"{PREFIX}/Microsoft.Compute", id="no-type"),
        pytest.param(
            "/subscriptions/not-a-guid/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
            id="bad-subscription",
        ),
        pytest.param(f"/subscriptions/{SUB}/providers/Microsoft.Compute/virtualMachines/vm1", id="no-group"),
        pytest.param(
            f"subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
            id="no-leading-slash",
        ),
        pytest.param(f" {PREFIX}/Microsoft.Compute/virtualMachines/vm1", id="leading-space"),
        pytest.param("", id="empty"),
        pytest.param("/", id="slash"),
    ],
)
def test_malformed_subjects_are_not_vms(subject: str) -> None:
    assert vm_id_from_subject(subject) is None


def test_longest_allowed_vm_name_is_a_vm() -> None:
    assert vm_id_from_subject(f"{PREFIX}/Microsoft.Compute/virtualMachines/" + "a" * 64) is not None


@pytest.mark.parametrize(
    "subject",
    [
        pytest.param(f"{PREFIX}/Microsoft.Compute/virtualMachines/vm1\n", id="name-newline"),
        pytest.param(
            f"/subscriptions/{SUB}/resourceGroups/rg\n/providers/Microsoft.Compute/virtualMachines/vm1",
            id="group-newline",
        ),
    ],
)
def test_trailing_newline_in_a_name_is_not_a_vm(subject: str) -> None:
    assert vm_id_from_subject(subject) is None


@pytest.mark.parametrize("subject", [None, 42, b"/subscriptions", ["a"], {"id": VM_ID}], ids=repr)
def test_non_strings_are_not_vms(subject: object) -> None:
    assert vm_id_from_subject(subject) is None


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.builds(
            lambda middle, tail: (
                f"/subscriptions/{SUB}/{middle}/providers/Microsoft.Compute/virtualMachines/{tail}"
            ),
            st.text(),
            st.text(),
        ),
        st.lists(
            st.sampled_from(
                [
                    "subscriptions",
                    SUB,
                    "resourceGroups",
                    "rg",
                    "providers",
                    "Microsoft.Compute",
                    "virtualMachines",
                    "vm",
                    "",
                    "..",
                    "%2F",
                ]
            ),
            max_size=12,
        ).map("/".join),
    )
)
def test_vm_id_from_subject_never_raises(subject: str) -> None:
    vm_id = vm_id_from_subject(subject)
    if vm_id is not None:
        # Whatever is accepted names exactly one VM, and reading it back gives the same id.
        assert vm_id_from_subject(vm_id) == vm_id
        assert vm_id.lower() == subject.lower()
