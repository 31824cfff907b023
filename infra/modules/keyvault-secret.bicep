// One Key Vault secret (the backup-now HMAC secret; keyvault.bicep).
param vaultName string
param name string

@secure()
param value string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: name
  properties: {
    // checkov:skip=CKV_AZURE_41:The HMAC secret is shared with ticketing tools and rotated by people (docs/DEPLOY.md); an expiry date would silently break every signed backup-now request.
    value: value
    contentType: 'text/plain; HMAC-SHA256 key of the backup-now API'
    attributes: {
      enabled: true
    }
  }
}
