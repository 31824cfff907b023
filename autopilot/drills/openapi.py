"""The restore drills' part of the OpenAPI document (autopilot/openapi.py adds it)."""

from __future__ import annotations

from typing import Any


def drill_paths(
    problem: Any, vm_pattern: str, signed: list[dict[str, list[str]]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(paths, schemas) of POST /drills and GET /drills/{id}."""
    drill = {
        "type": "object",
        "required": ["id", "vm", "status"],
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9a-f]{20}$"},
            "vm": {"type": "string"},
            "status": {
                "type": "string",
                "enum": ["Queued", "Triggering", "Restoring", "Verifying", "Cleaning", "Passed", "Failed"],
            },
            "outcome": {
                "type": ["string", "null"],
                "enum": [
                    "passed",
                    "restore-failed",
                    "restore-refused",
                    "verify-failed",
                    "no-recovery-point",
                    "no-staging",
                    "error",
                    None,
                ],
            },
            "detail": {"type": ["string", "null"]},
            "tier": {"type": "string", "enum": ["snapshot", "vault"]},
            "recoveryPoint": {"type": ["string", "null"]},
            "jobId": {"type": ["string", "null"]},
            "restoreSeconds": {"type": ["number", "null"]},
            "objectiveSeconds": {"type": ["integer", "null"]},
            "withinObjective": {"type": ["boolean", "null"]},
            "checks": {"type": "array", "items": {"type": "object"}},
            "restoredDisks": {"type": "array", "items": {"type": "string"}},
            "cleanedUp": {"type": "boolean"},
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": ["string", "null"]},
                    "class": {"type": ["string", "null"]},
                    "remedy": {"type": ["string", "null"]},
                },
            },
        },
    }
    request = {
        "type": "object",
        "required": ["vm"],
        "additionalProperties": False,
        "properties": {
            "vm": {"type": "string", "pattern": vm_pattern, "description": "The VM's ARM id."},
            "reason": {"type": "string", "maxLength": 400},
        },
    }

    def answer(description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/problem+json": {"schema": problem}}}

    ok = {"application/json": {"schema": {"$ref": "#/components/schemas/Drill"}}}
    paths = {
        "/drills": {
            "post": {
                "operationId": "startDrill",
                "summary": "Restore drill of one VM: restore its disks into the staging group, verify them, time the restore, delete them",
                "security": signed,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/DrillRequest"}}
                    },
                },
                "responses": {
                    "202": {
                        "description": "The drill (new, or the one in flight for the VM); Location: its status URL.",
                        "content": ok,
                    },
                    "400": answer("The request is not valid: the problem names the field."),
                    "401": answer("No valid function key (or signature, when required)."),
                    "403": answer("The VM is outside the configured scopes."),
                    "404": answer("No such VM."),
                    "409": answer(
                        "The VM cannot be drilled: no drills in the rules, not protected, no staging for its region."
                    ),
                    "413": answer("The body is too large."),
                    "502": answer("Azure refused."),
                    "503": answer("Azure is busy; retry."),
                },
            }
        },
        "/drills/{id}": {
            "get": {
                "operationId": "getDrill",
                "summary": "The drill: its status, restore time against the objective, checks, and on failure the error's class and remedy",
                "security": signed,
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "The drill.", "content": ok},
                    "401": answer("No valid function key."),
                    "404": answer("No such drill."),
                },
            }
        },
    }
    return paths, {"Drill": drill, "DrillRequest": request}
