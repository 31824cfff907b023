"""The first backup of a newly protected VM, at most once per VM, and only once its agent is Ready.

Azure takes a VM's backup through its VM agent: a backup of a VM whose agent has not reported fails
(UserErrorGuestAgentStatusUnavailable). A VM read right after its creation reports its agent "Not
Ready" ("VM status blob is found but not yet populated.", as recorded) for a while. Protection does
not need the agent, so the VM is protected at once; its first backup waits: a message on the
first-backup queue (FIRST_BACKUP_QUEUE), invisible for AUTOPILOT_AGENT_RECHECK_SECONDS, brings the VM
back to `due`, which starts the backup once the agent is Ready, looks again later while it is not,
and gives up after AUTOPILOT_AGENT_WAIT_MINUTES from the VM's creation with a "needs attention"
outcome that says why and how to fix the agent.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import ResourceNotFoundError

from autopilot.azure.failures import error_code, is_transient
from autopilot.azure.pacing import low_priority
from autopilot.azure.vms import VmFacts
from autopilot.kernel.outcomes import Kind, Outcome
from autopilot.protect import on_demand

if TYPE_CHECKING:
    from autopilot.app import Autopilot
    from autopilot.rules import VaultSpec

log = logging.getLogger("autopilot.protect.first_backup")
PURPOSE = "first-backup"  # its rows in the on-demand ledger, keyed by VM id
_FIELDS = {"vmId", "vault", "retainDays", "source"}


def take(
    autopilot: Autopilot, vm: VmFacts, vault: VaultSpec, retain_days: int, source: str, actions: list[str]
) -> None:
    """The VM's first backup now, or once its agent is Ready (a message on the first-backup queue)."""
    if vm.agent_status == "NotReady":
        _later(
            autopilot,
            {"vmId": vm.id, "vault": vault.resource_id, "retainDays": retain_days, "source": source},
        )
        actions.append("first-backup-after-agent")
        return
    _trigger(autopilot, vm, vault, retain_days, source, actions)


def _trigger(
    autopilot: Autopilot, vm: VmFacts, vault: VaultSpec, retain_days: int, source: str, actions: list[str]
) -> None:
    """At most one first backup per VM, however often the event arrives."""
    retain_until = dt.datetime.now(dt.UTC) + dt.timedelta(days=retain_days)
    try:
        with low_priority():  # after the protection of other new VMs when ARM's tokens are short
            operation = on_demand.trigger(autopilot, vault, vm, retain_until, PURPOSE, vm.id, once=True)
    except Exception as error:
        if error_code(error) == "UserErrorBackupOperationInProgress":
            # Another backup of the VM runs (a backup now, a scheduled one): its recovery point is
            # the first; the ledger row stays, marked, so no later delivery starts one again.
            on_demand.covered(autopilot, PURPOSE, vm.id)
            autopilot.audit.record(
                vm_id=vm.id,
                action="first-backup",
                reason="first backup after protection",
                outcome="not started: a backup of the VM is already running, and gives it its first recovery point",
                source=source,
            )
            return
        on_demand.forget(autopilot, PURPOSE, vm.id)
        if is_transient(error):
            raise
        autopilot.audit.record(
            vm_id=vm.id,
            action="first-backup",
            reason="first backup after protection",
            outcome=f"failed: {error_code(error)}",
            source=source,
        )
        return
    if operation is None:  # started before, by an earlier delivery or the sweep
        return
    actions.append("first-backup")
    autopilot.audit.record(
        vm_id=vm.id,
        action="first-backup",
        reason="first backup after protection",
        outcome=f"requested (operation {operation}, retain until {retain_until:%Y-%m-%d})",
        source=source,
        details={"operationId": operation},
    )


def _later(autopilot: Autopilot, message: dict[str, Any]) -> None:
    queue = autopilot.clients.queue(autopilot.settings.first_backup_queue)
    text = json.dumps(message)
    delay = autopilot.settings.agent_recheck_seconds
    try:
        queue.send_message(text, visibility_timeout=delay)
    except ResourceNotFoundError:  # the host creates its trigger's queue; this may run before it
        queue.create_queue()
        queue.send_message(text, visibility_timeout=delay)
    log.info("first backup of %s waits for its VM agent (next look in %d s)", message["vmId"], delay)


def parse(text: str) -> dict[str, Any] | None:
    """A first-backup message, or None if the text is not one (it is set aside)."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or set(data) != _FIELDS:
        return None
    if not all(isinstance(data[k], str) and 0 < len(data[k]) <= 400 for k in ("vmId", "vault", "source")):
        return None
    if (
        not isinstance(data["retainDays"], int)
        or isinstance(data["retainDays"], bool)
        or data["retainDays"] < 1
    ):
        return None
    return data


def due(autopilot: Autopilot, message: dict[str, Any]) -> str:
    """The queue trigger's work: the VM's first backup if its agent is Ready now; another look later
    if not; a needs-attention outcome once it has waited too long. Returns what happened."""
    vm = autopilot.azure.get_vm(message["vmId"])
    vault = autopilot.rules.vault_by_id(message["vault"])
    if vm is None or vault is None:
        return "dropped: the VM or its vault is gone"
    if vm.agent_status == "Ready":
        actions: list[str] = []
        _trigger(autopilot, vm, vault, message["retainDays"], message["source"], actions)
        return "started" if actions else "already started"
    created = vm.time_created or dt.datetime.now(dt.UTC)
    waited = dt.datetime.now(dt.UTC) - created
    if vm.agent_status == "NotReady" and waited < dt.timedelta(minutes=autopilot.settings.agent_wait_minutes):
        _later(autopilot, message)
        return "waiting for the agent"
    from autopilot.protect.carry_out import announce
    from autopilot.protect.decide import agent_guidance

    minutes = int(waited.total_seconds() // 60)
    announce(
        autopilot,
        Outcome(
            vm.id,
            Kind.NEEDS_ATTENTION,
            f"protected in vault {vault.name}, but its VM agent has not reported Ready {minutes} minutes after the "
            f"VM was created ({vm.agent_status}), so its first backup was not taken and its backups will fail",
            agent_guidance(vm),
            vault=vault.resource_id,
            details={"problems": ["VmAgentNotReady"]},
        ),
    )
    return "gave up: the agent never reported Ready"
