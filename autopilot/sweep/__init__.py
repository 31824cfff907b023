"""The sweep: the estate read (ARM pages or Resource Graph), one unit per subscription over the queue,
the checks and fixes of VMs, vaults, policies and jobs, the findings, and the report."""
