"""ARM error envelopes: every failure answers {"error": {"code", "message"}} with its HTTP status,
so that the Azure SDK raises its typed exception (HttpResponseError, ResourceNotFoundError, ...).

Raise the class of the answer's status, which carries it:

    raise BadRequest("InvalidParameter", "The value 'x' of parameter '$expand' is not valid.")   # 400
    raise Unauthorized(code, message)      # 401        raise Conflict(code, message)          # 409
    raise NotFound(code, message)          # 404        raise PayloadTooLarge(code, message)   # 413
    raise TooManyRequests(code, message, headers={"Retry-After": "5"})                        # 429

and, for the codes armsim answers most, the class of the code itself: InvalidRequestContent (400),
InvalidBackupInput (400 BMSUserErrorInvalidInput), ResourceNotFound (404) and NotImplementedOnArmsim
(501 NotImplemented: what armsim does not simulate). Each is an ArmError, which the server renders
in one place; ArmError(status, code, message) stays for a status known only at run time.
"""

from __future__ import annotations

from typing import Any, ClassVar


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


class _StatusError(ArmError):
    """An ArmError whose class gives its HTTP status."""

    STATUS: ClassVar[int]

    def __init__(
        self,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(self.STATUS, code, message, headers=headers, details=details)


class BadRequest(_StatusError):
    STATUS = 400


class Unauthorized(_StatusError):
    STATUS = 401


class NotFound(_StatusError):
    STATUS = 404


class Conflict(_StatusError):
    STATUS = 409


class PayloadTooLarge(_StatusError):
    STATUS = 413


class TooManyRequests(_StatusError):
    STATUS = 429


class InvalidRequestContent(BadRequest):
    """A body that is not what the operation takes (ARM's code for malformed and wrongly typed content)."""

    def __init__(self, message: str) -> None:
        super().__init__("InvalidRequestContent", message)


class InvalidBackupInput(BadRequest):
    """Azure Backup's refusal of a request's input."""

    def __init__(self, message: str) -> None:
        super().__init__("BMSUserErrorInvalidInput", message)


class ResourceNotFound(NotFound):
    def __init__(self, message: str) -> None:
        super().__init__("ResourceNotFound", message)


class NotImplementedOnArmsim(_StatusError):
    """What Azure may answer and armsim does not simulate: 501 NotImplemented, never a guess."""

    STATUS = 501

    def __init__(self, message: str) -> None:
        super().__init__("NotImplemented", message)


def resource_not_found(resource_type: str, name: str, resource_group: str) -> ResourceNotFound:
    return ResourceNotFound(
        f"The Resource '{resource_type}/{name}' under resource group '{resource_group}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix"
    )


def resource_group_not_found(name: str) -> NotFound:
    return NotFound("ResourceGroupNotFound", f"Resource group '{name}' could not be found.")


def not_implemented(method: str, path: str) -> NotImplementedOnArmsim:
    return NotImplementedOnArmsim(
        f"armsim does not simulate {method} {path}. See armsim/SUPPORTED_OPERATIONS.md for what it covers."
    )
