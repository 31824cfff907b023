"""Backup now: an on-demand backup of one VM with a retain-until date, for ticketing tools, and the
callbacks to the caller when a requested backup ends (only to allowed hosts, signed, retried).

Safe to call from anywhere: every input is validated, the VM must be inside the configured scopes,
the request id makes the call idempotent (the same id with the same body answers the same operation
and never starts a second backup, also under concurrency and across restarts; with another body it is
refused), a running backup of the VM is answered instead of starting another, and the per-VM daily
cap is kept. Errors are RFC 9457 problems that say what was wrong and how to fix it.

accept (POST /api/backups: the signature), request (parsing and validation, the record's key),
start (finding or starting the backup, waiting for a running one), status (GET /api/backups/{id}:
the job and recovery point, read fresh), view (the operation as the API shows it), callbacks and
callback_target (the call back when it ends).
"""
