// The function app on the Flex Consumption plan (FC1, Linux, Python 3.11). It runs as the
// user-assigned identity: storage (AzureWebJobsStorage__*), the deployment package, Key Vault
// references and telemetry all use it; no keys or connection strings are stored in settings.
param name string
param planName string
param location string
param tags object

@description('Resource id of the user-assigned identity.')
param identityId string

@description('Blob endpoint of the app\'s storage account (ends with /).')
param storageBlobEndpoint string

@description('Blob container the Flex Consumption deployment package is uploaded to.')
param deploymentContainerName string

@description('App settings (name: value); built in main.bicep.')
param appSettings object

param maximumInstanceCount int
param instanceMemoryMB int

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  // checkov:skip=CKV_AZURE_225:Zone redundancy of Flex Consumption needs always-ready instances and zone-redundant storage, a fixed monthly cost; the app is idempotent and Event Grid retries deliveries for 24 hours, so a zone outage delays protection, it does not lose it.
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  // checkov:skip=CKV_AZURE_16:App Service Authentication would block Event Grid's webhook delivery and the ticketing tools; HTTP functions require a function key (and an HMAC signature for backup-now), the Event Grid endpoint its system key.
  // checkov:skip=CKV_AZURE_17:Event Grid and ticketing tools do not present client certificates; requests are authenticated by function keys and HMAC signatures.
  // checkov:skip=CKV_AZURE_78:Flex Consumption has no FTP endpoint, and ARM rejects siteConfig.ftpsState for Flex sites (BadRequest 51021), so FTP cannot be (and need not be) disabled here; deployment is the blob package only.
  // checkov:skip=CKV_AZURE_222:Event Grid delivers to the app's public endpoint and ticketing tools call it; every function but the OpenAPI document requires a key.
  properties: {
    // checkov:skip=CKV_AZURE_212:Flex Consumption scales from zero by design; always-ready instances would be a fixed cost for an app that Event Grid retries for 24 hours.
    // checkov:skip=CKV_AZURE_213:Flex Consumption has no App Service health check; failures are alerted on from Application Insights (modules/alerts.bicep).
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      // No ftpsState: Flex Consumption has no FTP endpoint to disable, and ARM rejects it for Flex
      // sites (BadRequest 51021 "...site configuration properties (Site.SiteConfig.FtpsState, ...)
      // for Flex Consumption sites is invalid": microsoft/azure-pipelines-tasks#21032,
      // Azure/azure-cli#31414, Azure/terraform-azurerm-avm-res-web-site#345; docs/DEPLOY.md).
      http20Enabled: true
      remoteDebuggingEnabled: false
      appSettings: [for setting in items(appSettings): {
        name: setting.key
        value: setting.value
      }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

output id string = app.id
output name string = app.name
output defaultHostName string = app.properties.defaultHostName
