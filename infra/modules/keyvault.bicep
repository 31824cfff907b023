// Key Vault for the backup-now HMAC secret. RBAC authorization (no access policies), soft delete
// and purge protection. The app reads the secret through an App Service Key Vault reference
// (AUTOPILOT_HMAC_SECRET = @Microsoft.KeyVault(SecretUri=...)) resolved with its user-assigned
// identity, which holds Key Vault Secrets User on this vault (../rbac.bicep).
param name string
param location string
param tags object

@secure()
@description('The HMAC secret; empty: no secret is stored and backup-now requires no signature.')
param hmacSecret string

@description('Log Analytics workspace for the vault\'s audit log.')
param workspaceId string

var secretName = 'autopilot-hmac-secret'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    // checkov:skip=CKV_AZURE_109:App Service resolves Key Vault references over the vault's public endpoint (the Flex app has no VNet integration here, and App Service is not a trusted service for references); access is by Entra ID RBAC only.
    // checkov:skip=CKV_AZURE_189:Same reason: public network access is needed for the Key Vault reference; every read needs the Key Vault Secrets User role.
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

// A module of its own so that the secret is an unconditional resource where checkov reads it.
module secret 'keyvault-secret.bicep' = if (!empty(hmacSecret)) {
  name: 'autopilot-hmac-secret'
  params: {
    vaultName: vault.name
    name: secretName
    value: hmacSecret
  }
}

resource audit 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'autopilot-keyvault-audit'
  scope: vault
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

output id string = vault.id
output name string = vault.name
output endpoint string = vault.properties.vaultUri
output hmacSecretUri string = '${vault.properties.vaultUri}secrets/${secretName}/'
