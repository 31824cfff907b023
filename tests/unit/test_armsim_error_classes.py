"""armsim's typed ARM errors: each class carries its status (and, for the common codes, its code),
renders the ARM envelope of ArmError, and is caught as an ArmError."""

from __future__ import annotations

import pytest

from armsim.core.errors import (
    ArmError,
    BadRequest,
    Conflict,
    InvalidBackupInput,
    InvalidRequestContent,
    NotFound,
    NotImplementedOnArmsim,
    PayloadTooLarge,
    ResourceNotFound,
    TooManyRequests,
    Unauthorized,
    not_implemented,
    resource_group_not_found,
    resource_not_found,
)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (BadRequest("InvalidParameter", "m"), 400),
        (Unauthorized("AuthenticationFailed", "m"), 401),
        (NotFound("NotFound", "m"), 404),
        (Conflict("BMSUserErrorObjectLocked", "m"), 409),
        (PayloadTooLarge("PayloadTooLarge", "m"), 413),
        (TooManyRequests("RateLimiting", "m"), 429),
    ],
)
def test_a_status_class_carries_its_status_and_the_code_given(error: ArmError, status: int) -> None:
    assert isinstance(error, ArmError)
    assert error.status == status
    assert error.body() == {"error": {"code": error.code, "message": "m"}}
    assert str(error) == f"{status} {error.code}: m"


@pytest.mark.parametrize(
    ("error", "family", "status", "code"),
    [
        (InvalidRequestContent("m"), BadRequest, 400, "InvalidRequestContent"),
        (InvalidBackupInput("m"), BadRequest, 400, "BMSUserErrorInvalidInput"),
        (ResourceNotFound("m"), NotFound, 404, "ResourceNotFound"),
        (NotImplementedOnArmsim("m"), ArmError, 501, "NotImplemented"),
    ],
)
def test_a_code_class_carries_its_status_and_code(
    error: ArmError, family: type[ArmError], status: int, code: str
) -> None:
    assert isinstance(error, family)
    assert (error.status, error.code, error.message, error.headers, error.details) == (
        status,
        code,
        "m",
        {},
        None,
    )


def test_headers_and_details_render_as_with_arm_error() -> None:
    typed = TooManyRequests("RateLimiting", "m", headers={"Retry-After": "5"}, details=[{"code": "X"}])
    plain = ArmError(429, "RateLimiting", "m", headers={"Retry-After": "5"}, details=[{"code": "X"}])
    assert (typed.status, typed.headers, typed.body()) == (plain.status, plain.headers, plain.body())


def test_helpers_build_the_typed_errors() -> None:
    missing = resource_not_found("Microsoft.Compute/virtualMachines", "vm", "rg")
    assert isinstance(missing, ResourceNotFound)
    assert missing.message.startswith("The Resource 'Microsoft.Compute/virtualMachines/vm' under")
    group = resource_group_not_found("rg")
    assert (type(group), group.code, group.message) == (
        NotFound,
        "ResourceGroupNotFound",
        "Resource group 'rg' could not be found.",
    )
    unknown = not_implemented("GET", "/x")
    assert isinstance(unknown, NotImplementedOnArmsim)
    assert unknown.message.startswith("armsim does not simulate GET /x.")
