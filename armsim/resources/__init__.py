"""Microsoft.Resources: subscriptions and resource groups."""
