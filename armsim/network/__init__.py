"""Microsoft.Network: virtual networks (with subnets) and network interfaces."""
