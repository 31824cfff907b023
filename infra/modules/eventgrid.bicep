// Event Grid, both directions.
//
// In: the system topic of this subscription (Microsoft.Resources.Subscriptions) publishes
// ResourceWriteSuccess / ResourceDeleteSuccess. Its event subscription to the function's Event
// Grid trigger needs the deployed function's system key, so scripts/post-up.sh creates it (from
// infra/eventgrid-subscription.json: VM writes and deletes only, retries, dead-lettering with this
// topic's managed identity to the storage account, where ../rbac.bicep lets it write blobs).
//
// Out: a custom topic in the CloudEvents 1.0 schema for the app's outcome events
// (AUTOPILOT_EVENTS_ENDPOINT); Entra ID only (local auth off), EventGrid Data Sender for the app.
param topicName string
param systemTopicName string
param createSystemTopic bool
param location string
param tags object

@description('Log Analytics workspace for delivery failures of both topics.')
param workspaceId string

resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = if (createSystemTopic) {
  name: systemTopicName
  location: 'global'
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: subscription().id
    topicType: 'Microsoft.Resources.Subscriptions'
  }
}

resource topic 'Microsoft.EventGrid/topics@2025-02-15' = {
  name: topicName
  location: location
  tags: tags
  // checkov:skip=CKV_AZURE_191:The topic sends no events to other Azure resources (subscribers use webhooks they own), so it needs no managed identity.
  // checkov:skip=CKV_AZURE_193:The app (Flex Consumption without VNet integration) and the subscribers' tools reach the topic over its public endpoint; publishing requires Entra ID (local auth off) and the EventGrid Data Sender role.
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
    minimumTlsVersionAllowed: '1.2'
    dataResidencyBoundary: 'WithinGeopair'
  }
}

resource systemTopicLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (createSystemTopic) {
  name: 'autopilot-delivery-failures'
  scope: systemTopic
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        category: 'DeliveryFailures'
        enabled: true
      }
    ]
  }
}

resource topicLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'autopilot-delivery-failures'
  scope: topic
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        category: 'DeliveryFailures'
        enabled: true
      }
      {
        category: 'PublishFailures'
        enabled: true
      }
    ]
  }
}

output topicName string = topic.name
output topicEndpoint string = topic.properties.endpoint
output systemTopicName string = createSystemTopic ? systemTopic.name : ''
output systemTopicId string = createSystemTopic ? systemTopic.id : ''
output systemTopicPrincipalId string = createSystemTopic ? systemTopic.identity.principalId : ''
