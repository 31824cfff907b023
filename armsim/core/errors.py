"""ARM error envelopes: every failure answers {"error": {"code", "message"}} with its HTTP status,
so that the Azure SDK raises its typed exception (HttpResponseError, ResourceNotFoundError, ...)."""

from __future__ import annotations

from typing import Any


class ArmError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def bad_request(code: str, message: str) -> ArmError:
    return ArmError(400, code, message)


def conflict(code: str, message: str) -> ArmError:
    return ArmError(409, code, message)


def resource_not_found(resource_type: str, name: str, resource_group: str) -> ArmError:
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{resource_type}/{name}' under resource group '{resource_group}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def resource_group_not_found(name: str) -> ArmError:
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found.")


def not_implemented(method: str, path: str) -> ArmError:
    return ArmError(
        501,
        "NotImplemented",
        f"armsim does not simulate {method} {path}. See armsim/SUPPORTED_OPERATIONS.md for what it covers.",
    )
