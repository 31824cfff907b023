"""The Azure adapters: the one client factory (and its outbound-host check and ARM pacing), backup
and compute reads and writes as plain facts, Resource Graph, job history from Azure Monitor Logs, and
Azure Backup's job error codes."""
