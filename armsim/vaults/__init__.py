"""Microsoft.RecoveryServices/vaults."""
