// Alerts: failed function executions (log search on Application Insights) and dead-lettered VM
// events (Event Grid metric). With an e-mail address, an action group notifies it.
param actionGroupName string
param failuresAlertName string
param deadLetterAlertName string
param location string
param tags object

@description('E-mail address to notify; empty: the alerts fire without notification.')
param alertEmail string

param appInsightsId string

@description('Resource id of the Event Grid system topic (empty: none was created).')
param systemTopicId string

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'autopilot'
    enabled: true
    emailReceivers: [
      {
        name: 'operations'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

var actionGroups = empty(alertEmail) ? [] : [
  actionGroup.id
]

// Any failed execution of any function (Event Grid trigger, HTTP, timers, queue) in 15 minutes,
// one alert per function. The log query alert runs every 5 minutes.
resource functionFailures 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: failuresAlertName
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Backup Autopilot: function failures'
    description: 'A function of Backup Autopilot failed. Transactions > Failures in Application Insights shows the exception; VM events are retried by Event Grid for 24 hours.'
    severity: 2
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'requests | where success == false | project timestamp, operation_Name, resultCode, cloud_RoleInstance'
          timeAggregation: 'Count'
          dimensions: [
            {
              name: 'operation_Name'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

// Event Grid gave up on a VM event (30 attempts or 24 hours): the VM may be unprotected until the
// next sweep. The dead-lettered event is in the storage account's eventgrid-deadletter container.
resource deadLetters 'Microsoft.Insights/metricAlerts@2018-03-01' = if (!empty(systemTopicId)) {
  name: deadLetterAlertName
  location: 'global'
  tags: tags
  properties: {
    description: 'Event Grid dead-lettered a VM event for Backup Autopilot; the next sweep protects the VM. Look at the eventgrid-deadletter container.'
    severity: 2
    enabled: true
    scopes: [
      systemTopicId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          name: 'deadLetteredEvents'
          criterionType: 'StaticThresholdCriterion'
          metricNamespace: 'Microsoft.EventGrid/systemTopics'
          metricName: 'DeadLetteredCount'
          timeAggregation: 'Total'
          operator: 'GreaterThan'
          threshold: 0
        }
      ]
    }
    autoMitigate: true
    actions: [for id in actionGroups: {
      actionGroupId: id
    }]
  }
}

output failuresAlertId string = functionFailures.id
