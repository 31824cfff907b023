// Backup Autopilot for Azure VMs: the app, as `azd up` deploys it (docs/DEPLOY.md).
//
// Subscription scope: the app's resource group and its resources (modules/), and the app
// identity's roles on them (rbac.bicep) and on the subscriptions in scope (rbac-subscription.bicep).
//
// Not here, on purpose: the Recovery Services vaults and their policies. They hold the backups and
// must outlive the app, and `azd down` deletes every resource group a deployment touched, whatever
// else it holds. vaults.bicep deploys them from the rules file in a deployment of its own (the
// postprovision hook, infra/scripts/postprovision.sh), which `azd down` does not know about.
// The Event Grid subscription to the function's trigger needs the deployed function's key, so the
// postup hook creates it (scripts/post-up.sh).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; a short unique hash of it names the resources.')
param environmentName string

@minLength(1)
@description('Region of the app and its resources (the vaults live in the regions the rules name).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Name of the resource group of the app; empty: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Comma-separated ids of the subscriptions the autopilot may act on (the role Backup Autopilot VM protection there, and AUTOPILOT_SUBSCRIPTIONS). Empty: this subscription only.')
param scopeSubscriptionIds string = ''

@allowed([
  'true'
  'false'
])
@description('Create the custom role Backup Autopilot VM protection in each scoped subscription and assign it there. false: you create and assign it yourself, e.g. once on a management group (docs/DEPLOY.md).')
param assignSubscriptionRoles string = 'true'

@allowed([
  'true'
  'false'
])
@description('Create the Event Grid system topic of this subscription. Azure allows one per subscription: false if one exists (docs/DEPLOY.md).')
param createSystemTopic string = 'true'

@secure()
@description('The HMAC secret of the backup-now API (AUTOPILOT_HMAC_SECRET), stored in Key Vault. The preprovision hook generates one per azd environment.')
param hmacSecret string = ''

@description('E-mail address for alerts (function failures, dead-lettered events); empty: alert rules without notification.')
param alertEmail string = ''

@allowed([
  'auto'
  'resourcegraph'
  'arm'
])
@description('Where the sweep reads the estate (AUTOPILOT_INVENTORY): arm (ARM pages per subscription and vault), resourcegraph (Azure Resource Graph, every subscription at once: for many subscriptions), or auto (Resource Graph when the identity may query it, else ARM pages).')
param inventory string = 'arm'

@description('NCRONTAB schedule of the sweep (SWEEP_SCHEDULE).')
param sweepSchedule string = '0 0 */6 * * *'

@description('NCRONTAB schedule of the backup-now follow-up timer (BACKUP_FOLLOWUP_SCHEDULE). Every 5 minutes: each run is a billed execution.')
param backupFollowupSchedule string = '0 */5 * * * *'

@description('NCRONTAB schedule of the pruning of expired state and audit rows (PRUNE_SCHEDULE): once a day at a quiet hour.')
param pruneSchedule string = '0 30 3 * * *'

@description('Storage queue of the sweep fan-out (SWEEP_QUEUE).')
param sweepQueueName string = 'autopilot-sweep'

@description('Storage queue of first backups that wait for a new VM\'s agent (FIRST_BACKUP_QUEUE).')
param firstBackupQueueName string = 'autopilot-first-backup'

@description('AUTOPILOT_AGENT_RECHECK_SECONDS: how long a first backup waits before it looks at a new VM\'s agent again.')
param agentRecheckSeconds string = '60'

@description('AUTOPILOT_AGENT_WAIT_MINUTES: how long after a VM\'s creation its first backup waits for the agent before the VM needs attention.')
param agentWaitMinutes string = '30'

@description('Table of the audit log (AUTOPILOT_AUDIT_TABLE).')
param auditTableName string = 'autopilotaudit'

@description('Table of the app\'s state (AUTOPILOT_STATE_TABLE).')
param stateTableName string = 'autopilotstate'

@description('Blob container of the sweep reports (AUTOPILOT_REPORTS_CONTAINER).')
param reportsContainerName string = 'autopilot-reports'

@allowed([
  'true'
  'false'
])
@description('AUTOPILOT_SWEEP_DRY_RUN: the sweep only reports.')
param sweepDryRun string = 'false'

@description('AUTOPILOT_BACKUP_RETAIN_DAYS: default retention of a backup-now recovery point.')
param backupRetainDays string = '30'

@description('AUTOPILOT_BACKUP_DAILY_CAP: on-demand backups per VM per day (Azure allows 9).')
param backupDailyCap string = '4'

@description('AUTOPILOT_BACKUP_SCOPE_RESOURCE_GROUPS: resource groups whose VMs backup-now may touch.')
param backupScopeResourceGroups string = ''

@description('AUTOPILOT_BACKUP_SCOPE_TAG: key=value tag a VM needs for backup-now.')
param backupScopeTag string = ''

@description('AUTOPILOT_CALLBACK_ALLOWED_HOSTS: hosts backup-now may call back.')
param callbackAllowedHosts string = ''

@description('AUTOPILOT_RPO_GRACE_HOURS: hours past the policy\'s promise before a stale recovery point is a finding.')
param rpoGraceHours string = '6'

@description('AUTOPILOT_DST_WARN_DAYS: days ahead the sweep warns of a daylight saving time change.')
param dstWarnDays string = '14'

@description('AUTOPILOT_AUDIT_RETENTION_DAYS: days the audit table keeps a row (docs/STATE.md).')
param auditRetentionDays string = '400'

@description('AUTOPILOT_BACKUP_RECORD_RETENTION_DAYS: days a backup-now request\'s record (its status for ticketing tools, and its requestId\'s idempotency) is kept.')
param backupRecordRetentionDays string = '90'

@description('AUTOPILOT_SWEEP_RETENTION_DAYS: days the state table keeps sweep runs, history, cursors and open job alerts.')
param sweepRetentionDays string = '30'

@description('Storage queue whose messages carry restore drills on (DRILL_QUEUE).')
param drillQueueName string = 'autopilot-drills'

@description('NCRONTAB schedule of the drill timer (DRILL_TIMER_SCHEDULE): it starts a drill round when the rules\' drills.schedule has come round, and takes over stalled drills.')
param drillTimerSchedule string = '0 */10 * * * *'

@description('AUTOPILOT_DRILL_POLL_SECONDS: how often a running drill looks at its restore job again.')
param drillPollSeconds string = '30'

@description('AUTOPILOT_DRILL_STALE_SECONDS: after how long without progress a drill is taken over by the timer.')
param drillStaleSeconds string = '900'

@description('Log Analytics query endpoint (AUTOPILOT_LOGS_ENDPOINT).')
param logsEndpoint string = 'https://api.loganalytics.io/v1'

@minValue(40)
@maxValue(1000)
@description('Flex Consumption: most instances the app scales out to (Flex allows 40 to 1000).')
param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
@description('Flex Consumption: memory of an instance (MB).')
param instanceMemoryMB int = 2048

@minValue(30)
@maxValue(730)
@description('Days Log Analytics keeps the backup and app logs (30 are included in the price).')
param logRetentionDays int = 30

var abbrs = loadJsonContent('abbreviations.json')
// The rules file as scripts/rules_to_bicep_params.py generated it (the app reads the same file).
var rules = loadJsonContent('rules.generated.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}

var appName = '${abbrs.webSitesFunctions}autopilot-${resourceToken}'
var deploymentContainerName = 'app-package-${take(appName, 32)}-${take(resourceToken, 7)}'
var deadLetterContainerName = 'eventgrid-deadletter'
var scopeSubscriptions = empty(scopeSubscriptionIds) ? [
  subscription().subscriptionId
] : split(replace(scopeSubscriptionIds, ' ', ''), ',')

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}autopilot-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    workspaceName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    appInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
    retentionInDays: logRetentionDays
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    containers: [
      deploymentContainerName
      reportsContainerName
      deadLetterContainerName
    ]
    queues: [
      sweepQueueName
      '${sweepQueueName}-poison'
      firstBackupQueueName
      '${firstBackupQueueName}-poison'
      drillQueueName
      '${drillQueueName}-poison'
    ]
    tables: [
      auditTableName
      stateTableName
    ]
    workspaceId: monitoring.outputs.workspaceId
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: '${abbrs.keyVaultVaults}${resourceToken}'
    location: location
    tags: tags
    hmacSecret: hmacSecret
    workspaceId: monitoring.outputs.workspaceId
  }
}

module eventGrid 'modules/eventgrid.bicep' = {
  name: 'eventgrid'
  scope: rg
  params: {
    topicName: '${abbrs.eventGridDomainsTopics}autopilot-${resourceToken}'
    systemTopicName: '${abbrs.eventGridSystemTopics}subscription-${resourceToken}'
    createSystemTopic: createSystemTopic == 'true'
    location: location
    tags: tags
    workspaceId: monitoring.outputs.workspaceId
  }
}

// The app settings. Their keys are those of local.settings.template.json, less the local-only ones
// and with AzureWebJobsStorage as identity-based connection (tests/infra/test_infra_app_settings.py).
// OpenTelemetry: with APPLICATIONINSIGHTS_CONNECTION_STRING set, the app configures the Azure
// Monitor distro itself (autopilot/kernel/telemetry.py) with the identity of AZURE_CLIENT_ID; the host
// authenticates its telemetry with APPLICATIONINSIGHTS_AUTHENTICATION_STRING. Not set on purpose:
// PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY, which would make the worker configure it a second time.
var appSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.outputs.clientId
  AzureWebJobsStorage__blobServiceUri: storage.outputs.blobEndpoint
  AzureWebJobsStorage__queueServiceUri: storage.outputs.queueEndpoint
  AzureWebJobsStorage__tableServiceUri: storage.outputs.tableEndpoint
  AzureWebJobsFeatureFlags: 'EnableWorkerIndexing'
  AZURE_CLIENT_ID: identity.outputs.clientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.outputs.clientId};Authorization=AAD'
  AUTOPILOT_ARM_ENDPOINT: environment().name
  AUTOPILOT_SUBSCRIPTIONS: join(scopeSubscriptions, ',')
  AUTOPILOT_INVENTORY: inventory
  AUTOPILOT_RULES: rules.source
  AUTOPILOT_EVENTS_ENDPOINT: eventGrid.outputs.topicEndpoint
  AUTOPILOT_LOGS_WORKSPACE_ID: monitoring.outputs.workspaceCustomerId
  AUTOPILOT_LOGS_ENDPOINT: logsEndpoint
  AUTOPILOT_AUDIT_TABLE: auditTableName
  AUTOPILOT_STATE_TABLE: stateTableName
  AUTOPILOT_REPORTS_CONTAINER: reportsContainerName
  AUTOPILOT_SWEEP_DRY_RUN: sweepDryRun
  AUTOPILOT_BACKUP_RETAIN_DAYS: backupRetainDays
  AUTOPILOT_BACKUP_DAILY_CAP: backupDailyCap
  AUTOPILOT_BACKUP_SCOPE_RESOURCE_GROUPS: backupScopeResourceGroups
  AUTOPILOT_BACKUP_SCOPE_TAG: backupScopeTag
  AUTOPILOT_HMAC_SECRET: empty(hmacSecret) ? '' : '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.hmacSecretUri})'
  AUTOPILOT_CALLBACK_ALLOWED_HOSTS: callbackAllowedHosts
  AUTOPILOT_RPO_GRACE_HOURS: rpoGraceHours
  AUTOPILOT_DST_WARN_DAYS: dstWarnDays
  AUTOPILOT_AUDIT_RETENTION_DAYS: auditRetentionDays
  AUTOPILOT_BACKUP_RECORD_RETENTION_DAYS: backupRecordRetentionDays
  AUTOPILOT_SWEEP_RETENTION_DAYS: sweepRetentionDays
  SWEEP_SCHEDULE: sweepSchedule
  SWEEP_QUEUE: sweepQueueName
  FIRST_BACKUP_QUEUE: firstBackupQueueName
  AUTOPILOT_AGENT_RECHECK_SECONDS: agentRecheckSeconds
  AUTOPILOT_AGENT_WAIT_MINUTES: agentWaitMinutes
  BACKUP_FOLLOWUP_SCHEDULE: backupFollowupSchedule
  PRUNE_SCHEDULE: pruneSchedule
  DRILL_QUEUE: drillQueueName
  DRILL_TIMER_SCHEDULE: drillTimerSchedule
  AUTOPILOT_DRILL_POLL_SECONDS: drillPollSeconds
  AUTOPILOT_DRILL_STALE_SECONDS: drillStaleSeconds
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    name: appName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: deploymentContainerName
    appSettings: appSettings
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
  dependsOn: [
    rbacApp
  ]
}

// Role assignments on the app's own resources (storage, topic, workspace, Key Vault, App Insights).
module rbacApp 'rbac.bicep' = {
  name: 'rbac-app'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    assignAppRoles: true
    assignBackupContributor: false
    storageAccountName: storage.outputs.name
    deadLetterContainerName: deadLetterContainerName
    topicName: eventGrid.outputs.topicName
    systemTopicPrincipalId: eventGrid.outputs.systemTopicPrincipalId
    workspaceName: monitoring.outputs.workspaceName
    appInsightsName: monitoring.outputs.appInsightsName
    keyVaultName: keyVault.outputs.name
  }
}

// The custom role Backup Autopilot VM protection (read VMs and disks, backupStatus, and the
// virtualMachines/write Azure Backup requires to enable protection) on each subscription in scope.
module rbacSubscriptions 'rbac-subscription.bicep' = [for sub in scopeSubscriptions: if (assignSubscriptionRoles == 'true') {
  name: take('autopilot-rbac-${resourceToken}-${sub}', 64)
  scope: subscription(sub)
  params: {
    principalId: identity.outputs.principalId
  }
}]

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    actionGroupName: '${abbrs.insightsActionGroups}autopilot-${resourceToken}'
    failuresAlertName: '${abbrs.insightsScheduledQueryRules}autopilot-failures-${resourceToken}'
    deadLetterAlertName: '${abbrs.insightsMetricAlerts}autopilot-deadletters-${resourceToken}'
    location: location
    tags: tags
    alertEmail: alertEmail
    appInsightsId: monitoring.outputs.appInsightsId
    systemTopicId: eventGrid.outputs.systemTopicId
  }
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    location: location
    tags: tags
    workspaceId: monitoring.outputs.workspaceId
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_HOSTNAME string = functionApp.outputs.defaultHostName
output SERVICE_API_NAME string = functionApp.outputs.name
output SERVICE_API_URI string = 'https://${functionApp.outputs.defaultHostName}'
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_ENDPOINT string = keyVault.outputs.endpoint
output AZURE_LOG_ANALYTICS_WORKSPACE_ID string = monitoring.outputs.workspaceId
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.appInsightsName
output AUTOPILOT_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AUTOPILOT_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output AUTOPILOT_EVENTS_ENDPOINT string = eventGrid.outputs.topicEndpoint
output AUTOPILOT_LOGS_WORKSPACE_ID string = monitoring.outputs.workspaceCustomerId
output AUTOPILOT_SUBSCRIPTIONS string = join(scopeSubscriptions, ',')
output AUTOPILOT_RULES string = rules.source
output EVENTGRID_SYSTEM_TOPIC_NAME string = eventGrid.outputs.systemTopicName
output EVENTGRID_DEADLETTER_STORAGE_ID string = storage.outputs.id
output EVENTGRID_DEADLETTER_CONTAINER string = deadLetterContainerName
output AUTOPILOT_WORKBOOK_ID string = workbook.outputs.id
