// Backup Autopilot's Recovery Services vaults and backup policies, and the staging resource groups
// and storage accounts of its restore drills, from the rules file.
//
// One source of truth: rules.generated.json is generated from the rules file the app reads
// (AUTOPILOT_RULES) by scripts/rules_to_bicep_params.py, whose policy bodies are
// PolicySpec.to_arm_properties(), the code the app itself creates and compares policies with.
//
// A deployment of its own, run by the azd postprovision hook (infra/scripts/postprovision.sh) after
// main.bicep: the vaults hold the backups and must outlive the app, and `azd down` deletes every
// resource group its deployment touched, whatever else it holds. Nothing here carries the
// azd-env-name tag either, which azd also uses to find what to delete.
//
// Per vault resource group of the rules: the group (create mode), its vaults with every policy
// (modules/vaults.bicep), their diagnostic settings, and Backup Contributor for the app's identity
// (rbac.bicep). Per staging place of the rules' drills section (a region's staging resource group
// and storage account in a vault's subscription): the group, the account (modules/drill-staging.bicep)
// and the drill roles on them (rbac-drills.bicep). Like the vaults, they stay out of `azd down`: a
// staging group may hold disks a person kept (restoredDisks: keep), or be a group the rules share
// with other things. Vaults and staging places in other subscriptions than this deployment's are handled only with
// includeOtherSubscriptionVaults (the deploying identity needs rights there); the preprovision hook
// lists the vaults it skips.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment (tags, deployment names).')
param environmentName string

@description('Object id of the app\'s managed identity (output AUTOPILOT_IDENTITY_PRINCIPAL_ID of main.bicep).')
param principalId string

@description('Resource id of the Log Analytics workspace (output AZURE_LOG_ANALYTICS_WORKSPACE_ID of main.bicep).')
param workspaceId string

@allowed([
  'create'
  'existing'
])
@description('create: create the rules\' vaults (and resource groups) with their policies. existing: the vaults exist; only connect them (diagnostic settings, Backup Contributor); the app creates the policies.')
param vaultMode string = 'create'

@allowed([
  'true'
  'false'
])
@description('Also handle the rules\' vaults in other subscriptions than this one.')
param includeOtherSubscriptionVaults string = 'false'

// The rules file as scripts/rules_to_bicep_params.py generated it.
var rules = loadJsonContent('rules.generated.json')
var token = toLower(uniqueString(subscription().id, environmentName))
var tags = {
  'backup-autopilot': environmentName
}

// The vault groups (one per vault resource group) this deployment handles.
var vaultGroups = filter(rules.vaultGroups, g => includeOtherSubscriptionVaults == 'true' || g.subscriptionId =~ subscription().subscriptionId)

// The staging places this deployment handles (the same subscription filter as the vaults').
var stagingPlaces = filter(rules.staging, s => includeOtherSubscriptionVaults == 'true' || s.subscriptionId =~ subscription().subscriptionId)

// The vaults' resource groups (create mode), each in its own subscription.
module vaultResourceGroups 'modules/resource-group.bicep' = [for g in vaultGroups: if (vaultMode == 'create') {
  name: take('autopilot-vaultrg-${token}-${g.resourceGroup}', 64)
  scope: subscription(g.subscriptionId)
  params: {
    name: g.resourceGroup
    location: g.location
    tags: tags
  }
}]

// One module per vault resource group: its vaults, the rules' policies in each, diagnostics.
module vaults 'modules/vaults.bicep' = [for (g, i) in vaultGroups: {
  name: take('autopilot-vaults-${token}-${i}', 64)
  scope: resourceGroup(g.subscriptionId, g.resourceGroup)
  params: {
    createVaults: vaultMode == 'create'
    vaults: g.vaults
    policies: rules.policies
    posture: rules.posture
    workspaceId: workspaceId
    tags: tags
  }
  dependsOn: [
    vaultResourceGroups
  ]
}]

// Backup Contributor for the app's identity on each vault resource group.
module rbacVaults 'rbac.bicep' = [for (g, i) in vaultGroups: {
  name: take('autopilot-rbac-vaults-${token}-${i}', 64)
  scope: resourceGroup(g.subscriptionId, g.resourceGroup)
  params: {
    principalId: principalId
    assignAppRoles: false
    assignBackupContributor: true
    storageAccountName: 'none'
    deadLetterContainerName: 'none'
    topicName: 'none'
    systemTopicPrincipalId: ''
    workspaceName: 'none'
    appInsightsName: 'none'
    keyVaultName: 'none'
  }
  dependsOn: [
    vaultResourceGroups
  ]
}]

// Restore drills: each staging resource group, in its own subscription and the vaults' region.
module stagingResourceGroups 'modules/resource-group.bicep' = [for (s, i) in stagingPlaces: {
  name: take('autopilot-drillrg-${token}-${i}', 64)
  scope: subscription(s.subscriptionId)
  params: {
    name: s.resourceGroup
    location: s.region
    tags: tags
  }
}]

// Its staging storage account (Standard_LRS, as Azure Backup requires of a disk restore's staging).
module staging 'modules/drill-staging.bicep' = [for (s, i) in stagingPlaces: {
  name: take('autopilot-drillst-${token}-${i}', 64)
  scope: resourceGroup(s.subscriptionId, s.resourceGroup)
  params: {
    name: s.storageAccount
    location: s.region
    tags: tags
    workspaceId: workspaceId
  }
  dependsOn: [
    stagingResourceGroups
  ]
}]

// The drill roles of the app's identity on the staging group and its account.
module rbacDrills 'rbac-drills.bicep' = [for (s, i) in stagingPlaces: {
  name: take('autopilot-rbac-drills-${token}-${i}', 64)
  scope: resourceGroup(s.subscriptionId, s.resourceGroup)
  params: {
    principalId: principalId
    stagingAccountName: staging[i].outputs.name
  }
}]

output AUTOPILOT_RULES string = rules.source
output AUTOPILOT_VAULT_GROUPS int = length(vaultGroups)
output AUTOPILOT_DRILL_STAGING int = length(stagingPlaces)
