// Rights of Backup Autopilot's identity for restore drills, deployed on each staging resource group
// of the rules (vaults.bicep, rules.generated.json `staging`): two custom roles, each defined in
// (and assignable only in) this resource group, one assigned on the group, one on the staging
// storage account. A file of its own so that rbac.bicep's roles and these never mix.
//
// What a drill needs that the app's other roles do not give (docs/DEPLOY.md, "Restore drills"):
// - On the vault: Restores_Trigger, recovery points, protected item operation status, backup jobs.
//   Backup Contributor on the vaults' resource groups (rbac.bicep) holds them: its Actions include
//   Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/*, which covers the restore
//   action, Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/protectedItems/
//   recoveryPoints/restore/action, and recoveryPoints/read and operationsStatus/read under it; and
//   Microsoft.RecoveryServices/Vaults/backupJobs/* (Azure's built-in roles, Storage, "Backup
//   Contributor").
// - On the source VM: Microsoft.Compute/virtualMachines/write, Azure Backup's check for any restore
//   of a VM's backup, and virtualMachines/read and disks/read (the drill's comparison): the custom
//   role Backup Autopilot VM protection on the subscription (rbac-subscription.bicep), with
//   Microsoft.Compute/locations/diskOperations/read for a disk deletion's status.
// - The boot step (rules' `verify: boot`, autopilot/drills/boot.py): its writes, deletes and joins in
//   the staging group are the group role's below; the VM PUT itself (virtualMachines/write), the
//   restored OS disk's read (disks/read) and the status URLs its LROs poll
//   (Microsoft.Compute/locations/operations/read, Microsoft.Network/locations/operations/read, both
//   subscription-scoped URLs) are the subscription role's.
// - On the staging group and account: the two roles below, instead of Contributor on the group and
//   Storage Account Contributor and Storage Blob Data Contributor on the account, which Azure Backup's
//   RBAC page names and which would also grant writes of every resource type, listKeys and blob writes.

@description('Object id of the app\'s user-assigned managed identity.')
param principalId string

@description('Name of the staging storage account in this resource group (modules/drill-staging.bicep).')
param stagingAccountName string

// The staging group role's actions:
// - Microsoft.Resources/subscriptions/resourceGroups/write: Azure Backup checks that the caller of a
//   restore of managed disks holds it on the target resource group ("Restore managed disks from VM
//   backup": Contributor on the resource group, or a custom role with this action). The identity
//   never calls it itself.
// - Microsoft.Compute/disks/delete: the drill's clean-up, disks.begin_delete of each disk the
//   restore made in the staging group (autopilot/drills/azure.py delete_disk).
// The boot step (autopilot/drills/boot.py), each call in the staging group only:
// - Microsoft.Compute/disks/write: ARM's linked access check of the boot VM's PUT on each managed disk
//   it attaches (the restored OS disk, createOption Attach, and the restored data disks): a VM PUT
//   naming a disk needs disks/write on that disk (LinkedAuthorizationFailed otherwise); there is no
//   join action for disks. The identity never PUTs a disk itself.
// - Microsoft.Compute/virtualMachines/delete: clean_up, virtual_machines.begin_delete of the boot VM.
// - Microsoft.Compute/virtualMachines/instanceView/read: boot_state,
//   virtual_machines.instance_view (GET .../virtualMachines/{vm}/instanceView), the VM agent's status.
// - Microsoft.Network/virtualNetworks/write: make_network, virtual_networks.begin_create_or_update
//   of the drill's VNet with its one subnet (inline).
// - Microsoft.Network/virtualNetworks/read: the final GET of that PUT's poller (GET of the VNet).
// - Microsoft.Network/virtualNetworks/delete: clean_up, virtual_networks.begin_delete.
// - Microsoft.Network/virtualNetworks/subnets/join/action: ARM's linked access check of the NIC's PUT
//   on the subnet its IP configuration names.
// - Microsoft.Network/networkInterfaces/write: make_network, network_interfaces.begin_create_or_update.
// - Microsoft.Network/networkInterfaces/read: the final GET of that PUT's poller (GET of the NIC).
// - Microsoft.Network/networkInterfaces/delete: clean_up, network_interfaces.begin_delete.
// - Microsoft.Network/networkInterfaces/join/action: ARM's linked access check of the boot VM's PUT
//   on the NIC its networkProfile names.
var stagingGroupActions = [
  'Microsoft.Resources/subscriptions/resourceGroups/write'
  'Microsoft.Compute/disks/delete'
  'Microsoft.Compute/disks/write'
  'Microsoft.Compute/virtualMachines/delete'
  'Microsoft.Compute/virtualMachines/instanceView/read'
  'Microsoft.Network/virtualNetworks/write'
  'Microsoft.Network/virtualNetworks/read'
  'Microsoft.Network/virtualNetworks/delete'
  'Microsoft.Network/virtualNetworks/subnets/join/action'
  'Microsoft.Network/networkInterfaces/write'
  'Microsoft.Network/networkInterfaces/read'
  'Microsoft.Network/networkInterfaces/delete'
  'Microsoft.Network/networkInterfaces/join/action'
]

// The staging account role's actions and data actions:
// - Microsoft.Storage/storageAccounts/write: Azure Backup checks that the caller of a restore of
//   managed disks holds it on the staging storage account ("Storage Account Contributor on the
//   temporary storage account, or a custom role with this action"). The identity never calls it.
// - Microsoft.Storage/storageAccounts/blobServices/containers/delete: Delete Container with
//   Microsoft Entra ID, the drill's clean-up of the restore's container (ContainerClient
//   .delete_container, autopilot/drills/azure.py delete_container).
// - Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read (data action): Get Blob
//   Properties of the restore's configuration blob, the drill's check that it is there
//   (BlobClient.get_blob_properties, autopilot/drills/azure.py blob_exists).
var stagingAccountActions = [
  'Microsoft.Storage/storageAccounts/write'
  'Microsoft.Storage/storageAccounts/blobServices/containers/delete'
]
var stagingAccountDataActions = [
  'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'
]

resource stagingAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: stagingAccountName
}

// Role names are unique in a tenant: each carries its resource group's id.
resource stagingGroupRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'backup-autopilot-drill-staging-group')
  properties: {
    roleName: 'Backup Autopilot drill staging group (${resourceGroup().id})'
    description: 'Backup Autopilot for Azure VMs, restore drills: restore a VM\'s disks into this resource group (Azure Backup requires resourceGroups/write on it) and delete the restored disks; for a boot drill, create and delete an isolated VNet, a NIC and a VM of the restored disks (disks/write: ARM\'s check when a VM attaches a disk) and read its instance view. Nothing outside this group.'
    type: 'CustomRole'
    permissions: [
      {
        actions: stagingGroupActions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      resourceGroup().id
    ]
  }
}

resource stagingAccountRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'backup-autopilot-drill-staging-account')
  properties: {
    roleName: 'Backup Autopilot drill staging account (${resourceGroup().id})'
    description: 'Backup Autopilot for Azure VMs, restore drills: name this storage account as a restore\'s staging location (Azure Backup requires storageAccounts/write on it), read the restore\'s configuration blob and delete its container. No keys, no blob writes.'
    type: 'CustomRole'
    permissions: [
      {
        actions: stagingAccountActions
        notActions: []
        dataActions: stagingAccountDataActions
        notDataActions: []
      }
    ]
    assignableScopes: [
      resourceGroup().id
    ]
  }
}

// Backup Autopilot drill staging group (the custom role above) on the staging resource group only.
// Needed by Restores_Trigger (RestoreDisks) into this group, for which Azure Backup checks
// Microsoft.Resources/subscriptions/resourceGroups/write here, by the clean-up of the restored
// disks (Microsoft.Compute/disks/delete), and by the boot step: its VNet and NIC
// (Microsoft.Network/virtualNetworks/write, read, delete, subnets/join/action;
// Microsoft.Network/networkInterfaces/write, read, delete), its VM of the restored disks (ARM's checks
// Microsoft.Compute/disks/write on each attached disk and Microsoft.Network/networkInterfaces/join/action
// on the NIC), the VM's instance view (Microsoft.Compute/virtualMachines/instanceView/read) and its
// deletion (Microsoft.Compute/virtualMachines/delete).
resource stagingGroup 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, stagingGroupRole.id)
  properties: {
    roleDefinitionId: stagingGroupRole.id
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Backup Autopilot: restore drills into this group, boot their VMs, delete what they made'
  }
}

// Backup Autopilot drill staging account (the custom role above) on the staging storage account only.
// Needed by Restores_Trigger (RestoreDisks) naming this account, for which Azure Backup checks
// Microsoft.Storage/storageAccounts/write on it, by the check of the restore's configuration blob
// (Get Blob Properties: Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read) and by
// the clean-up of the restore's container (Delete Container:
// Microsoft.Storage/storageAccounts/blobServices/containers/delete).
resource stagingAccountAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(stagingAccount.id, principalId, stagingAccountRole.id)
  scope: stagingAccount
  properties: {
    roleDefinitionId: stagingAccountRole.id
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Backup Autopilot: restore drills\' staging location, read and delete the restore\'s blobs'
  }
}
