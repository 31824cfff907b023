// Subscription-wide role assignments of Backup Autopilot, deployed once per subscription in scope
// (main.bicep: scopeSubscriptionIds). A file of its own because Bicep deploys a file at one scope:
// the resource group and resource assignments are in rbac.bicep. With a management group instead
// of a list of subscriptions, assign the same two roles there (docs/DEPLOY.md, "Scoping").
targetScope = 'subscription'

@description('Object id of the app\'s user-assigned managed identity.')
param principalId string

var reader = 'acdd72a7-3385-48ef-bd42-f606fba81ae7' // Reader
var virtualMachineContributor = '9980e02c-c2be-4d73-94e8-173b1dc7cf3c' // Virtual Machine Contributor

// Reader on the subscription. Needed by the inventory and the checks before protecting: VMs list
// and listAll with statusOnly instance views (Microsoft.Compute/virtualMachines/read), managed disks
// (shared disks are excluded), resource groups, and the vaults of other resource groups
// (Microsoft.RecoveryServices/vaults/read) to find a VM protected in another vault.
resource subscriptionReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, reader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', reader)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Backup Autopilot: read VMs, disks and vaults'
  }
}

// Virtual Machine Contributor on the subscription (VMs may be in any of its resource groups).
// Needed because enabling backup changes the VM: Azure Backup requires the caller of protectedItems
// write (enable protection, resume) to hold Microsoft.Compute/virtualMachines/write on the VM, and
// installs the backup extension (VMSnapshot / VMSnapshotLinux) through the VM agent
// (Microsoft.Compute/virtualMachines/extensions/write). Azure Backup's RBAC table names this role
// for "enable backup of an Azure VM"; it grants no data access in the VMs and no role assignments.
resource vmContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, virtualMachineContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', virtualMachineContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Backup Autopilot: enable backup on VMs (backup extension)'
  }
}
