// Subscription-wide role of Backup Autopilot, deployed once per subscription in scope (main.bicep:
// scopeSubscriptionIds). A file of its own because Bicep deploys a file at one scope: the resource
// group and resource assignments are in rbac.bicep. With a management group instead of a list of
// subscriptions, create the same role there and assign it yourself (docs/DEPLOY.md, "Scoping").
//
// Least privilege: a custom role with exactly the actions the app's calls on VMs (and a vault's
// Resource Guard proxies) need
// (autopilot/azure/gateway.py; docs/DEPLOY.md has the table of call and action), instead of Reader
// (every read in the subscription) and Virtual Machine Contributor, which also grants
// Microsoft.Compute/virtualMachines/* (run command, extension writes, VM delete), disk write and
// delete, Microsoft.Storage/storageAccounts/listKeys/action, serial console access and vault writes.
// tests/infra/test_infra_rbac.py holds the exact list.
targetScope = 'subscription'

@description('Object id of the app\'s user-assigned managed identity.')
param principalId string

// The role's actions, one per kind of call the app makes on the VM side (docs/DEPLOY.md):
// - Microsoft.Compute/virtualMachines/read: GET a VM with its instance view (events, checks before
//   protecting) and list a subscription's VMs with statusOnly instance views (the sweep).
// - Microsoft.Compute/disks/read: GET and list managed disks (shared disks, maxShares > 1, cannot be
//   backed up and are excluded).
// - Microsoft.RecoveryServices/locations/backupStatus/action: POST .../locations/{region}/backupStatus,
//   where the VM is protected, if anywhere; a subscription-scope call, so Backup Contributor on the
//   vaults' resource groups does not cover it.
// - Microsoft.Compute/virtualMachines/write: Azure Backup checks that the caller of protectedItems
//   PUT (enable protection, change policy, resume) holds it on the VM ("Enable backup of Azure VMs":
//   Virtual Machine Contributor on the VM, or a custom role with this action). The backup
//   extension (VMSnapshot / VMSnapshotLinux) is installed by the Azure Backup service during the
//   first backup, not with the caller's rights: no Microsoft.Compute/virtualMachines/extensions/write.
// - Microsoft.ResourceGraph/resources/read: POST /providers/Microsoft.ResourceGraph/resources, the
//   sweep's estate-wide inventory (AUTOPILOT_INVENTORY resourcegraph or auto). Resource Graph answers
//   only with what the identity may read anyway (VMs and disks by this role, vault children by Backup
//   Contributor); without this action `auto` reads ARM pages instead.
// - Microsoft.RecoveryServices/Vaults/backupResourceGuardProxies/read: GET .../vaults/{vault}/
//   backupResourceGuardProxies, which Resource Guard protects a vault (multi-user authorization), read
//   by the sweep's posture check (autopilot/posture/vaults.py); Backup Contributor does not hold it.
//   Read only: associating or removing a guard stays a person's.
// - Microsoft.Compute/locations/diskOperations/read: GET .../providers/Microsoft.Compute/locations/
//   {region}/DiskOperations/{id}, the status of a restore drill's disk deletion (disks.begin_delete
//   polls it until the disk is gone). The URL is subscription-scoped, so the drill role on the
//   staging resource group (rbac-drills.bicep, Microsoft.Compute/disks/delete) does not cover it. A
//   restore drill also reads the source VM and its disks (virtualMachines.get, disks.get), lists the
//   staging group's disks (disks.list_by_resource_group) with the reads above, and its
//   Restores_Trigger needs virtualMachines/write on the source VM (Azure Backup's check, as above).
//   A boot drill (autopilot/drills/boot.py) reads the restored OS disk (disks.get) and PUTs its VM in
//   the staging group (virtualMachines/write) with the actions above too.
// - Microsoft.Compute/locations/operations/read: GET .../providers/Microsoft.Compute/locations/
//   {region}/operations/{id}, the Azure-AsyncOperation URL a boot drill's VM deletion
//   (virtual_machines.begin_delete(...).result()) polls. Subscription-scoped like diskOperations.
// - Microsoft.Network/locations/operations/read: GET .../providers/Microsoft.Network/locations/
//   {region}/operations/{id}, the Azure-AsyncOperation URL a boot drill's VNet and NIC creations and
//   deletions poll. Subscription-scoped too; the SDK never asks the deletions' Location
//   (locations/operationResults) when Azure-AsyncOperation is given, so no operationResults/read.
var vmProtectionActions = [
  'Microsoft.Compute/virtualMachines/read'
  'Microsoft.Compute/virtualMachines/write'
  'Microsoft.Compute/disks/read'
  'Microsoft.RecoveryServices/locations/backupStatus/action'
  'Microsoft.ResourceGraph/resources/read'
  'Microsoft.RecoveryServices/Vaults/backupResourceGuardProxies/read'
  'Microsoft.Compute/locations/diskOperations/read'
  'Microsoft.Compute/locations/operations/read'
  'Microsoft.Network/locations/operations/read'
]

// One definition per subscription, assignable there only. Role names are unique in a tenant, so the
// name carries the subscription id; several azd environments in one subscription share it (same
// GUID, same content).
resource vmProtectionRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'backup-autopilot-vm-protection')
  properties: {
    roleName: 'Backup Autopilot VM protection (${subscription().subscriptionId})'
    description: 'Backup Autopilot for Azure VMs: read VMs and disks (also through Resource Graph), check where a VM is backed up, enable its backup (Azure Backup requires virtualMachines/write on the VM), read which Resource Guard protects a vault, and follow the disk, VM and network operations of a restore drill. No run command, extensions, deletes, storage keys or data access.'
    type: 'CustomRole'
    permissions: [
      {
        actions: vmProtectionActions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      subscription().id
    ]
  }
}

// Backup Autopilot VM protection (the custom role above) on the subscription: VMs may be in any of
// its resource groups. Needed by the inventory and the sweep (Microsoft.Compute/virtualMachines/read,
// Microsoft.Compute/disks/read), by the check before protecting
// (Microsoft.RecoveryServices/locations/backupStatus/action), and by enabling or resuming protection
// (Microsoft.Compute/virtualMachines/write on the VM, Azure Backup's linked-access check), and by
// the sweep's Resource Graph inventory (Microsoft.ResourceGraph/resources/read), and by the sweep's
// vault posture check (Microsoft.RecoveryServices/Vaults/backupResourceGuardProxies/read), and by
// restore drills: the source VM's write check of Restores_Trigger, reading the source VM and the
// restored disks, and the status of a restored disk's deletion
// (Microsoft.Compute/locations/diskOperations/read), and by boot drills: the boot VM's PUT in the
// staging group and the status of its deletion (Microsoft.Compute/locations/operations/read) and of
// its network's creation and deletion (Microsoft.Network/locations/operations/read).
resource vmProtection 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, vmProtectionRole.id)
  properties: {
    roleDefinitionId: vmProtectionRole.id
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Backup Autopilot: read VMs and disks, check and enable their backup'
  }
}

output roleDefinitionId string = vmProtectionRole.id
