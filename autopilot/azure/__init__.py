"""The Azure adapters: the one client factory (and its outbound-host check and ARM pacing), the
gateway of Compute and Backup reads and writes (AzureGateway), the plain facts they answer with
(ItemFacts, JobFacts, PointFacts), what a failed call means (failures: TransientError,
classify_failure), Resource Graph, job history from Azure Monitor Logs, and Azure Backup's job error
codes."""
