// The Azure Monitor workbook "Backup Autopilot: compliance" (workbook.json): compliance now and
// over time from the app's outcome and sweep events, failed and warning backup jobs from
// AddonAzureBackupJobs, and findings by type. It queries the Log Analytics workspace.
param location string
param tags object
param workspaceId string

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, 'backup-autopilot-compliance')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'Backup Autopilot: compliance'
    category: 'workbook'
    sourceId: workspaceId
    version: 'Notebook/1.0'
    serializedData: replace(loadTextContent('workbook.json'), '__WORKSPACE_ID__', workspaceId)
  }
}

output id string = workbook.id
