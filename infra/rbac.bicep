// Role assignments of Backup Autopilot on a resource group and the resources in it: the app's own
// resources (assignAppRoles, deployed on the app's resource group) and the vaults' resource groups
// (assignBackupContributor, deployed on each of them). The subscription-wide role (the custom role
// Backup Autopilot VM protection) is in rbac-subscription.bicep: Bicep deploys a file at one scope,
// and a resource group file cannot assign at a subscription (BCP139), so it needs a file of its own.
//
// Least privilege: each assignment is on the narrowest scope that works, and each names the calls
// that need it. Never Owner, Contributor, User Access Administrator or Virtual Machine Contributor
// (tests/infra/test_infra_rbac.py).

@description('Object id of the app\'s user-assigned managed identity.')
param principalId string

@description('Assign the roles on the app\'s own resources (the app\'s resource group).')
param assignAppRoles bool

@description('Assign Backup Contributor on this resource group (a vaults\' resource group).')
param assignBackupContributor bool

// The app's resources (used with assignAppRoles; placeholders otherwise).
param storageAccountName string
param deadLetterContainerName string
param topicName string

@description('Object id of the Event Grid system topic\'s identity (empty: no system topic).')
param systemTopicPrincipalId string

param workspaceName string
param appInsightsName string
param keyVaultName string

// Built-in role definitions (GUIDs are the same in every tenant).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data Contributor
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe' // Storage Blob Data Contributor
var eventGridDataSender = 'd5a91429-5739-47e2-a06b-3470a27159e7' // EventGrid Data Sender
var logAnalyticsReader = '73c42c96-874c-492b-b04d-ab87d138a893' // Log Analytics Reader
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb' // Monitoring Metrics Publisher
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6' // Key Vault Secrets User
var backupContributor = '5e467623-bb1f-42f4-a55d-6e525e11384b' // Backup Contributor

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storageAccount
  name: 'default'
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: deadLetterContainerName
}

resource topic 'Microsoft.EventGrid/topics@2025-02-15' existing = {
  name: topicName
}

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

// Storage Blob Data Owner on the app's storage account. Needed by the Functions host's
// identity-based AzureWebJobsStorage (Put Blob, Acquire/Renew Lease on the host lock and timer
// schedule blobs in azure-webjobs-hosts; Create Container), by Flex Consumption to fetch the
// deployment package (Get Blob), and by the sweep to write its reports (Put Blob). The Functions
// documentation requires Owner, not Contributor, for AzureWebJobsStorage.
resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (assignAppRoles) {
  name: guid(storageAccount.id, principalId, storageBlobDataOwner)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Backup Autopilot: Functions host storage, deployment package, sweep reports'
  }
}

// Storage Queue Data Contributor on the app's storage account. Needed by the sweep's fan-out: the
// timer puts one message per unit of work (Put Message on SWEEP_QUEUE), the queue trigger reads
// and deletes them (Get Messages, Delete Message) and moves poison messages (Put Message on
// <queue>-poison).
resource queueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (assignAppRoles) {
  name: guid(storageAccount.id, principalId, storageQueueDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Backup Autopilot: sweep fan-out queue'
  }
}

// Storage Table Data Contributor on the app's storage account. Needed by the audit log and the
// state (AUTOPILOT_AUDIT_TABLE, AUTOPILOT_STATE_TABLE): Insert Entity, Update/Merge Entity, Query
// Entities (idempotency of backup-now, claims on events, alert de-duplication, sweep runs).
resource tableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (assignAppRoles) {
  name: guid(storageAccount.id, principalId, storageTableDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Backup Autopilot: audit and state tables'
  }
}

// Storage Blob Data Contributor for the Event Grid system topic's identity, on the dead-letter
// container only. Needed by Event Grid to dead-letter undeliverable VM events (Put Blob, with
// deadLetterWithResourceIdentity) since the account accepts no shared keys.
resource deadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (assignAppRoles && !empty(systemTopicPrincipalId)) {
  name: guid(deadLetterContainer.id, systemTopicPrincipalId, storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: systemTopicPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Backup Autopilot: Event Grid dead-lettering of VM events'
  }
}

// EventGrid Data Sender on the outcome topic only. Needed to publish the CloudEvents of outcomes
// (EventGridPublisherClient.send: Microsoft.EventGrid/topics/events/send/action); the topic
// accepts no access keys.
resource eventSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (assignAppRoles) {
  name: guid(topic.id, principalId, eventGridDataSender)
  scope: topic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventGridDataSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Backup Autopilot: publish outcome events'
  }
}

// Log Analytics Reader on the workspace only. Needed by the sweep's job history: LogsQueryClient
// .query_workspace over AddonAzureBackupJobs (Microsoft.OperationalInsights/workspaces/query/read,
// .../search/action).
resource logsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (assignAppRoles) {
  name: guid(workspace.id, principalId, logAnalyticsReader)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', logAnalyticsReader)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Backup Autopilot: read backup job history'
  }
}

// Monitoring Metrics Publisher on Application Insights only. Needed to send telemetry with
// Microsoft Entra ID (APPLICATIONINSIGHTS_AUTHENTICATION_STRING; Microsoft.Insights/Telemetry/Write)
// because the component's local (instrumentation key) authentication is disabled.
resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (assignAppRoles) {
  name: guid(appInsights.id, principalId, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Backup Autopilot: Entra ID authenticated telemetry'
  }
}

// Key Vault Secrets User on the Key Vault only. Needed by App Service to resolve the Key Vault
// reference of AUTOPILOT_HMAC_SECRET with the app's identity (Get Secret:
// Microsoft.KeyVault/vaults/secrets/getSecret/action).
resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (assignAppRoles) {
  name: guid(keyVault.id, principalId, keyVaultSecretsUser)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Backup Autopilot: read the backup-now HMAC secret'
  }
}

// Backup Contributor on a vaults' resource group. Needed to protect VMs and run backups in the
// rules' vaults (Microsoft.RecoveryServices/vaults/backupFabrics/...): refreshContainers,
// protectedItems read, list and write (enable, change policy, resume, undelete, stop), backups
// (trigger: backup now), operation statuses, backupPolicies read and write (ensure-policies, policy
// drift), backupJobs read, backupstorageconfig read and patch (storage redundancy), and the vault
// posture check: Microsoft.RecoveryServices/Vaults/read (security settings), Vaults/write (immutability
// Unlocked), backupconfig read and patch (soft delete, its retention). Scoped to these
// resource groups it also holds Microsoft.RecoveryServices/Vaults/write (vault settings) but not
// vault delete, and no Microsoft.Authorization write: it cannot grant access.
resource vaultBackupContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (assignBackupContributor) {
  name: guid(resourceGroup().id, principalId, backupContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', backupContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Backup Autopilot: protect VMs and run backups in this resource group\'s vaults'
  }
}
