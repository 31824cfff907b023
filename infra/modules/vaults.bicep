// The Recovery Services vaults of one resource group, as the rules file declares them
// (../rules.generated.json, generated from the rules file), with every policy of the rules file in
// every vault, and diagnostic settings that send the vaults' resource-specific backup tables to the
// workspace, where the sweep and the workbook read them (AddonAzureBackupJobs and the others).
//
// createVaults false (vaultMode 'existing'): the vaults exist and are left as they are; only the
// diagnostic settings are added. The app creates or corrects the policies itself
// (`python -m autopilot ensure-policies`, and on first use), as the rules' onPolicyDrift says.

@description('Create the vaults and their policies (true), or use existing vaults (false).')
param createVaults bool

@description('The vaults: [{name, region, storageRedundancy}] from rules.generated.json.')
param vaults array

@description('The policies: [{name, properties}], properties being PolicySpec.to_arm_properties().')
param policies array

@description('New vaults\' security posture from the rules\' posture section (autopilot/posture/grading.py new_vault_settings): {softDeleteRetentionPeriodInDays, immutabilityState (Unlocked, or empty: no state sent), crossRegionRestore, publicNetworkAccess}. Never Locked, never always-on.')
param posture object

@description('Log Analytics workspace for the backup reports.')
param workspaceId string

param tags object

var policyCount = length(policies)

// Azure Backup's resource-specific tables (Dedicated): Backup Reports and the sweep read these.
var backupLogCategories = [
  'CoreAzureBackup'
  'AddonAzureBackupJobs'
  'AddonAzureBackupAlerts'
  'AddonAzureBackupPolicy'
  'AddonAzureBackupStorage'
  'AddonAzureBackupProtectedInstance'
]

resource vault 'Microsoft.RecoveryServices/vaults@2024-04-01' = [for v in vaults: if (createVaults) {
  name: v.name
  location: v.region
  tags: tags
  sku: {
    name: 'RS0'
    tier: 'Standard'
  }
  properties: {
    publicNetworkAccess: posture.publicNetworkAccess
    // Soft delete as the rules' posture says (Azure leaves it as it is when an existing vault is written);
    // immutability Unlocked only when the rules require it, otherwise no state is sent, so that a redeployment
    // never tries to undo a lock a person made (Azure refuses leaving Locked). Locking is a person's.
    securitySettings: {
      softDeleteSettings: {
        softDeleteState: 'Enabled'
        softDeleteRetentionPeriodInDays: posture.softDeleteRetentionPeriodInDays
        enhancedSecurityState: 'Enabled'
      }
      immutabilitySettings: empty(posture.immutabilityState) ? {} : {
        state: posture.immutabilityState
      }
    }
    // The storage redundancy the rules name; Azure refuses to change it once the vault holds items.
    // Cross-region restore needs geo-redundant storage.
    redundancySettings: {
      standardTierStorageRedundancy: v.storageRedundancy
      crossRegionRestore: v.storageRedundancy == 'GeoRedundant' ? posture.crossRegionRestore : 'Disabled'
    }
    monitoringSettings: {
      azureMonitorAlertSettings: {
        alertsForAllJobFailures: 'Enabled'
      }
      classicAlertSettings: {
        alertsForCriticalOperations: 'Disabled'
      }
    }
  }
}]

resource existingVault 'Microsoft.RecoveryServices/vaults@2024-04-01' existing = [for v in vaults: {
  name: v.name
}]

// Every policy in every vault: index i is vault i / policyCount, policy i % policyCount. One at a
// time: Azure Backup refuses concurrent policy writes in one vault.
@batchSize(1)
resource policy 'Microsoft.RecoveryServices/vaults/backupPolicies@2024-04-01' = [for i in range(0, createVaults ? length(vaults) * policyCount : 0): {
  parent: vault[i / policyCount]
  name: policies[i % policyCount].name
  properties: policies[i % policyCount].properties
}]

resource backupLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = [for (v, i) in vaults: {
  name: 'autopilot-backup-reports'
  scope: existingVault[i]
  properties: {
    workspaceId: workspaceId
    logAnalyticsDestinationType: 'Dedicated'
    logs: [for category in backupLogCategories: {
      category: category
      enabled: true
    }]
  }
  dependsOn: [
    vault
  ]
}]

output vaultIds array = [for (v, i) in vaults: existingVault[i].id]
