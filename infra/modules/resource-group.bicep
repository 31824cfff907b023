// A resource group of the rules file (vaults, or a restore drills' staging group), in the
// subscription the rules name.
targetScope = 'subscription'

param name string
param location string
param tags object

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: name
  location: location
  tags: tags
}

output id string = rg.id
