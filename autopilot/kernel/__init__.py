"""The shared kernel every capability uses: the state table (claims, records), the audit log, the
events the product announces, the outcomes of a VM, HTTP API problems, request signing and tracing."""
