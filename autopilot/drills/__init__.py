"""Restore drills: prove that recovery points restore (docs/RULES.md, "drills"). A drill restores a
protected VM's disks into a staging group, verifies them (and with `verify: boot`, boots a VM from
them in an isolated network), times it, deletes what it made, and reports; rounds follow the rules'
schedule and rotation."""
