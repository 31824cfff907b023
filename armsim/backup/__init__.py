"""Microsoft.RecoveryServices backup (Azure Backup for IaaS VMs)."""
