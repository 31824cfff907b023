"""Azure Monitor Logs: the Log Analytics query API over armsim's backup job history (AddonAzureBackupJobs)."""
