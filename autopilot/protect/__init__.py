"""The protect core: what the rules want for a VM (decide), making it so (carry_out: protect_vm),
the policies it needs in a vault (ensure_policy), the vault of a region's set with room, the first
backup of a new VM and the ledger of on-demand backups; and the intake of Event Grid's events."""
