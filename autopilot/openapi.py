"""The OpenAPI 3.1 document of the HTTP API (served at GET /api/openapi.json)."""

from __future__ import annotations

from typing import Any

from autopilot.backup_now.request import REQUEST_ID
from autopilot.names import RESOURCE_GROUP, SUBSCRIPTION_ID

PROBLEM = {"$ref": "#/components/schemas/Problem"}
VM_ID_PATTERN = (
    "^/subscriptions/" + SUBSCRIPTION_ID.pattern.strip("^$") + "/resourceGroups/[-\\w.()]{0,89}[-\\w()]"
    "/providers/Microsoft\\.Compute/virtualMachines/[A-Za-z0-9]([A-Za-z0-9._-]{0,62}[A-Za-z0-9_])?$"
)


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"schema": PROBLEM}}}


def document() -> dict[str, Any]:
    operation_view = {
        "type": "object",
        "required": ["id", "status", "vm", "retainUntil"],
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "requestId": {"type": ["string", "null"]},
            "status": {
                "type": "string",
                "enum": [
                    "Accepted",
                    "Waiting",
                    "Triggering",
                    "InProgress",
                    "Completed",
                    "CompletedWithWarnings",
                    "Failed",
                    "Cancelled",
                    "Cancelling",
                    "Refused",
                ],
            },
            "jobId": {"type": ["string", "null"]},
            "vm": {"type": "string"},
            "retainUntil": {"type": "string", "format": "date-time"},
            "phases": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "status"],
                    "properties": {
                        "name": {
                            "type": "string",
                            "description": "Take Snapshot or Transfer data to vault (Azure's task names, "
                            "in this spelling whatever case Azure writes them in).",
                        },
                        "status": {"type": "string"},
                    },
                },
            },
            "startTime": {"type": ["string", "null"]},
            "endTime": {"type": ["string", "null"]},
            "meaning": {"type": "string", "description": "What CompletedWithWarnings means for this job."},
            "waitingFor": {
                "type": "string",
                "description": "Status Waiting: the running backup of the VM this request waits for "
                "(its recovery point is kept for less time than asked); this request's own backup "
                "starts when it ends.",
            },
            "detail": {"type": "string", "description": "Why the status is Waiting or Refused."},
            "recoveryPoint": {
                "type": "string",
                "description": "The name of the recovery point the backup made (the item's point taken "
                "within the job's time), once the job has finished.",
            },
            "recoveryPointTime": {"type": "string", "format": "date-time"},
            "recoveryPointExpiry": {
                "type": "string",
                "format": "date-time",
                "description": "When Azure deletes the recovery point, as Azure holds it (the point's "
                "expiryTime, else the job's 'Recovery Point Expiry Time in UTC'); may differ from "
                "retainUntil when the request joined a backup that was already running.",
            },
            "error": {
                "type": "object",
                "required": ["code", "class", "remedy"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "class": {
                        "type": "string",
                        "enum": ["transient", "needs-a-person", "transient-or-needs-a-person", "unknown"],
                    },
                    "remedy": {"type": "string"},
                },
            },
            "callback": {
                "type": "object",
                "properties": {"status": {"type": "string"}, "attempts": {"type": "integer"}},
            },
        },
    }
    request = {
        "type": "object",
        "additionalProperties": False,
        "required": ["requestId"],
        "properties": {
            "vm": {
                "type": "string",
                "description": "The VM's ARM id (or give subscriptionId, resourceGroup and name instead).",
                "pattern": VM_ID_PATTERN,
                "maxLength": 512,
            },
            "subscriptionId": {
                "type": "string",
                "pattern": SUBSCRIPTION_ID.pattern,
            },
            "resourceGroup": {"type": "string", "pattern": RESOURCE_GROUP.pattern},
            "name": {"type": "string", "pattern": "^[A-Za-z0-9]([A-Za-z0-9._-]{0,62}[A-Za-z0-9_])?$"},
            "retainUntil": {
                "type": "string",
                "pattern": "^\\d{4}-\\d{2}-\\d{2}(T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|\\+00:00))?$",
                "description": "A date (2026-12-31) or a UTC date-time (2026-12-31T18:00:00Z), at least a day ahead "
                "and at most 99 years. Default: AUTOPILOT_BACKUP_RETAIN_DAYS days from now.",
            },
            "requestId": {
                "type": "string",
                "pattern": REQUEST_ID.pattern,
                "description": "Idempotency key, e.g. the ticket number.",
            },
            "reason": {"type": "string", "maxLength": 500},
            "callbackUrl": {"type": "string", "format": "uri", "maxLength": 2048},
            "protectIfNeeded": {"type": "boolean", "default": False},
        },
    }
    signed: list[dict[str, list[str]]] = [{"functionKey": []}]
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Backup Autopilot: backup now",
            "version": "1.0.0",
            "description": "On-demand backups of Azure VMs for ticketing tools. Every call needs a function key "
            "(x-functions-key header or code query parameter); when the operator sets a signing secret, also "
            "X-Autopilot-Timestamp and X-Autopilot-Signature (sha256=HMAC-SHA256 of '<timestamp>.<body>').",
        },
        "servers": [{"url": "/api"}],
        "components": {
            "securitySchemes": {"functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"}},
            "schemas": {
                "BackupRequest": request,
                "BackupOperation": operation_view,
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "field": {"type": "string"},
                    },
                },
            },
        },
        "paths": {
            "/backups": {
                "post": {
                    "operationId": "requestBackup",
                    "summary": "Back up a VM now, with a retain-until date",
                    "security": signed,
                    "parameters": [
                        {
                            "name": "X-Autopilot-Timestamp",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "X-Autopilot-Signature",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string"},
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/BackupRequest"}}
                        },
                    },
                    "responses": {
                        "202": {
                            "description": "The backup is accepted (or was already): follow the Location.",
                            "headers": {"Location": {"schema": {"type": "string"}}},
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/BackupOperation"}
                                }
                            },
                        },
                        "400": _problem("A field is missing or not valid; the problem names it."),
                        "401": _problem(
                            "No valid function key, or a missing, expired, wrong or replayed signature."
                        ),
                        "403": _problem(
                            "The VM is outside the configured scopes, or the callback is not allowed."
                        ),
                        "404": _problem("The VM does not exist."),
                        "409": _problem(
                            "The VM is not protected, has no vault, or the requestId was used for another request."
                        ),
                        "413": _problem("The body is larger than 16 KB."),
                        "429": _problem("The VM's on-demand backups for today are used up."),
                        "502": _problem("Azure refused the backup."),
                        "503": _problem("Azure is busy; retry with the same requestId."),
                    },
                }
            },
            "/backups/{id}": {
                "get": {
                    "operationId": "getBackup",
                    "summary": "The backup's job, its two phases, the recovery point, and on failure the error's class and remedy",
                    "security": signed,
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": {
                            "description": "The operation.",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/BackupOperation"}
                                }
                            },
                        },
                        "401": _problem("No valid function key."),
                        "404": _problem("No such backup."),
                        "503": _problem("Azure is busy; retry."),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "The OpenAPI document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
    }
    from autopilot.drills.openapi import drill_paths

    paths, schemas = drill_paths(PROBLEM, VM_ID_PATTERN, signed)
    doc["paths"].update(paths)
    doc["components"]["schemas"].update(schemas)
    return doc
