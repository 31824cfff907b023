"""Microsoft.Compute: virtual machines and managed disks."""
