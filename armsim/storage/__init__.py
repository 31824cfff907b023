"""Microsoft.Storage: storage accounts and the blobs Azure Backup writes into them."""
