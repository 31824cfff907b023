"""Backup now: the HTTP API's requests (validation, scopes, idempotency, the status view) and the
callbacks to the caller when a requested backup ends (only to allowed hosts, signed, retried)."""
