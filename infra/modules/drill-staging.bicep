// The staging storage account of restore drills in one staging resource group (the rules' drills
// section, rules.generated.json `staging`). A drill's Restores_Trigger (RestoreDisks) names this
// account: Azure Backup writes the restore's configuration blob and deployment template (and, for a
// vault-tier recovery point, the disks' VHD files) into a container of its own making here, and
// creates the restored managed disks in the group. The drill reads the configuration blob, then
// deletes the disks and the container (autopilot/drills/).
//
// What Azure Backup accepts as the staging location of a disk restore ("Storage accounts" in its
// "Restore VMs by using the Azure portal"): a storage account in the vault's region, not of kind
// BlobStorage, not zone-redundant, not premium for non-premium VMs. A restore without identityInfo
// (the drill's) reaches it with the account's keys; with identityInfo the vault's managed identity
// would. Hence StorageV2 Standard_LRS and allowSharedKeyAccess true, and nothing else open: no
// anonymous blob access, TLS 1.2, https only.
param name string
param location string
param tags object

@description('Log Analytics workspace for the account\'s blob write and delete logs.')
param workspaceId string

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  // checkov:skip=CKV_AZURE_206:Locally redundant on purpose: Azure Backup refuses zone-redundant and premium staging accounts for disk restores, and the account only holds a drill's configuration blob for minutes (deleted with its container after the check).
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    // Shared key access stays on: Azure Backup writes a restore's configuration blob and template
    // into the staging account with the account's keys (a RestoreDisks request without identityInfo). The app itself uses Microsoft Entra ID only (its roles in
    // ../rbac-drills.bicep), and holds no listKeys right.
    allowSharedKeyAccess: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    // checkov:skip=CKV_AZURE_35:Azure Backup writes the restore's files from its service and the app (Flex Consumption, no VNet integration) reads and deletes them over the public endpoint; access needs Entra ID roles or the account keys, never anonymous.
    // checkov:skip=CKV_AZURE_59:Same reason: Azure Backup and the app reach the staging account over its public endpoint; anonymous access is disabled.
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
        }
      }
    }
  }
}

// No soft delete, on purpose: a restore from a vault-tier recovery point also leaves the disks' VHD
// files in the staging account ("Restore disks" in Azure Backup's "Restore VMs by using the Azure
// portal"), which may be terabytes; the drill deletes the restore's container once it has checked
// it, and soft delete would keep (and bill) every deleted VHD for its retention days. Nothing here
// is kept for its own sake: the drill's record and audit rows say what the restore made.
resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: false
    }
    containerDeleteRetentionPolicy: {
      enabled: false
    }
  }
}

// Write and delete logs of the blobs (what Azure Backup wrote, what the drill deleted).
resource blobLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!empty(workspaceId)) {
  name: 'autopilot-drill-staging-logs'
  scope: blobService
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
  }
}

output id string = account.id
output name string = account.name
