"""Routes of Microsoft.Storage storage accounts (ARM) and a minimal Blob data plane.

ARM: create (synchronous 200, one of the two answers the spec allows), get, delete, lists, listKeys.
Blob data plane, path style at `/{account}.blob/...` (not ARM: no throttling, not in the ARM
statistics): read a blob (GET, HEAD), a container's properties, delete a container, list the
account's containers and a container's blobs. Requests carry a bearer token for Azure Storage
(`https://storage.azure.com`) or a SharedKey authorization naming the account (its signature is not
checked, as armsim checks no signatures).
"""

from __future__ import annotations

import functools
from typing import Any
from xml.sax.saxutils import escape

from armsim.core.auth import check_bearer
from armsim.core.errors import ArmError
from armsim.core.http import Endpoint, Handler, Request, Response
from armsim.core.paging import paged
from armsim.core.responses import Responses
from armsim.resources.models import ResourcesBackend
from armsim.storage.models import ACCOUNT_TYPE, StorageBackend, http_date

STORAGE_API = (
    "2016-01-01", "2019-06-01", "2021-09-01", "2022-09-01", "2023-01-01", "2023-05-01", "2024-01-01",
    "2025-01-01", "2025-06-01",
)  # fmt: skip
ACCOUNT = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Storage/storageAccounts/{accountName}"
STORAGE_AUDIENCES = frozenset({"https://storage.azure.com"})
BLOB_VERSION = "2025-01-05"
ACCOUNTS_IN_GROUP = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Storage/storageAccounts"
ACCOUNTS = "/subscriptions/{subscriptionId}/providers/Microsoft.Storage/storageAccounts"
BLOB = "/{account}.blob/{container}/{blob}"
CONTAINER = "/{account}.blob/{container}"
BLOB_ACCOUNT = "/{account}.blob"


def _arm(method: str, template: str, operation: str, handler: str) -> Endpoint:
    return Endpoint(method, template, operation, handler, STORAGE_API, ACCOUNT_TYPE)


def _blob(method: str, template: str, operation: str, handler: str) -> Endpoint:
    """A Blob data-plane route: not ARM (no api-version, throttling or ARM token; counted apart)."""
    return Endpoint(method, template, operation, handler, None, service="none")


ROUTES = (
    _arm("PUT", ACCOUNT, "StorageAccounts_Create", "put_account"),
    _arm("GET", ACCOUNT, "StorageAccounts_GetProperties", "get_account"),
    _arm("DELETE", ACCOUNT, "StorageAccounts_Delete", "delete_account"),
    _arm("POST", ACCOUNT + "/listKeys", "StorageAccounts_ListKeys", "list_keys"),
    _arm("GET", ACCOUNTS_IN_GROUP, "StorageAccounts_ListByResourceGroup", "list_accounts_in_group"),
    _arm("GET", ACCOUNTS, "StorageAccounts_List", "list_accounts"),
    # -- the Blob data plane
    _blob("GET", BLOB, "Blob_Download", "download_blob"),
    _blob("HEAD", BLOB, "Blob_GetProperties", "get_blob_properties"),
    _blob("GET", CONTAINER, "Container_GetPropertiesOrListBlobs", "get_container_or_list_blobs"),
    _blob("HEAD", CONTAINER, "Container_GetProperties", "get_container_properties"),
    _blob("DELETE", CONTAINER, "Container_Delete", "delete_container"),
    _blob("GET", BLOB_ACCOUNT, "Service_ListContainers", "list_containers"),
)


class StorageResponses(Responses[StorageBackend]):
    def bind(self, endpoint: Endpoint) -> Handler:
        """The Blob data plane answers its errors in Blob's XML, not ARM's envelope."""
        handler = super().bind(endpoint)
        if endpoint.service == "none":
            return functools.partial(_blob_errors, handler)
        return handler

    # -- storage accounts (ARM) --------------------------------------------------------------
    def put_account(self, request: Request) -> Response:
        record, _ = self.backend.put(*_ids(request), request.json())
        return Response(200, self.backend.view(record, request.base_url))

    def get_account(self, request: Request) -> Response:
        return Response(200, self.backend.view(self.backend.get(*_ids(request)), request.base_url))

    def delete_account(self, request: Request) -> Response:
        return Response(200 if self.backend.delete(*_ids(request)) else 204)

    def list_keys(self, request: Request) -> Response:
        return Response(200, self.backend.keys_view(self.backend.get(*_ids(request))))

    def list_accounts_in_group(self, request: Request) -> Response:
        backend = self.backend
        sub, group = request.params["subscriptionId"], request.params["resourceGroupName"]
        self.world.backend(ResourcesBackend).require_group(sub, group)
        return paged(
            request, backend.list(sub, group), 1000, lambda record: backend.view(record, request.base_url)
        )

    def list_accounts(self, request: Request) -> Response:
        backend = self.backend
        sub = request.params["subscriptionId"]
        self.world.backend(ResourcesBackend).require_subscription(sub)
        return paged(request, backend.list(sub), 1000, lambda record: backend.view(record, request.base_url))

    # -- the Blob data plane -----------------------------------------------------------------
    def download_blob(self, request: Request) -> Response:
        return self._read_blob(request)

    def get_blob_properties(self, request: Request) -> Response:
        return self._read_blob(request)

    def get_container_or_list_blobs(self, request: Request) -> Response:
        return self._container_request(request)

    def get_container_properties(self, request: Request) -> Response:
        return self._container_request(request)

    def delete_container(self, request: Request) -> Response:
        return self._container_request(request)

    def list_containers(self, request: Request) -> Response:
        record = self._account(request)
        if request.query.get("comp") != "list":
            raise BlobError(
                400, "InvalidQueryParameterValue", "Value for one of the query parameters is not valid."
            )
        prefix = request.query.get("prefix", "")
        containers = "".join(
            f"<Container><Name>{escape(name)}</Name><Properties>"
            f"<Last-Modified>{http_date(box['created'])}</Last-Modified>"
            f'<Etag>"0x{int(box["created"] * 1000):X}"</Etag><LeaseStatus>unlocked</LeaseStatus>'
            "<LeaseState>available</LeaseState></Properties></Container>"
            for name, box in sorted(record["containers"].items())
            if name.startswith(prefix)
        )
        return xml_answer(
            f'<EnumerationResults ServiceEndpoint="{escape(request.base_url)}/{record["model"]["name"]}.blob/">'
            f"<Containers>{containers}</Containers><NextMarker /></EnumerationResults>"
        )

    # -- shared by several operations --------------------------------------------------------
    def _account(self, request: Request) -> dict[str, Any]:
        """The account the request addresses, once its caller is authenticated."""
        name = request.params["account"]
        authorization = request.headers.get("authorization", "")
        if authorization.lower().startswith(("sharedkey ", "sharedkeylite ")):
            # azure-storage-blob takes a path-style URL's first segment ('{account}.blob') as the account.
            if authorization.split(" ", 1)[1].split(":", 1)[0] not in (name, f"{name}.blob"):
                raise BlobError(
                    403, "AuthenticationFailed", "The SharedKey authorization names another account."
                )
        else:
            try:
                check_bearer(authorization or None, STORAGE_AUDIENCES)
            except ArmError as err:
                status = 401 if err.code == "AuthenticationFailed" else 403
                code = "NoAuthenticationInformation" if status == 401 else "AuthenticationFailed"
                raise BlobError(status, code, err.message) from None
        record = self.backend.find_by_name(name)
        if record is None:
            raise BlobError(404, "ResourceNotFound", "The specified resource does not exist.")
        return record

    def _read_blob(self, request: Request) -> Response:
        record = self._account(request)
        container = record["containers"].get(request.params["container"])
        if container is None:
            raise BlobError(404, "ContainerNotFound", "The specified container does not exist.")
        blob = container["blobs"].get(request.params["blob"])
        if blob is None:
            raise BlobError(404, "BlobNotFound", "The specified blob does not exist.")
        content = blob["content"].encode("utf-8")
        headers = {
            "Content-Type": blob["contentType"],
            "ETag": blob["etag"],
            "Last-Modified": http_date(blob["created"]),
            "x-ms-creation-time": http_date(blob["created"]),
            "x-ms-blob-type": "BlockBlob",
            "x-ms-server-encrypted": "true",
            "x-ms-version": BLOB_VERSION,
            "Accept-Ranges": "bytes",
        }
        wanted = request.headers.get("x-ms-range") or request.headers.get("range")
        if wanted and request.method == "GET":
            # azure-storage-blob downloads in ranges and reads the size from Content-Range (206).
            first, _, last = wanted.removeprefix("bytes=").partition("-")
            start = int(first or 0)
            if start >= len(content):
                raise BlobError(
                    416,
                    "InvalidRange",
                    "The range specified is invalid for the current size of the resource.",
                )
            stop = min(int(last) if last else len(content) - 1, len(content) - 1)
            headers["Content-Range"] = f"bytes {start}-{stop}/{len(content)}"
            return Response(206, content[start : stop + 1], headers)
        return Response(200, content, headers)

    def _container_request(self, request: Request) -> Response:
        record = self._account(request)
        name = request.params["container"]
        restype = request.query.get("restype", "")
        if restype != "container":
            raise BlobError(
                400, "InvalidQueryParameterValue", "Value for one of the query parameters is not valid."
            )
        container = record["containers"].get(name)
        if container is None:
            raise BlobError(404, "ContainerNotFound", "The specified container does not exist.")
        if request.method == "DELETE":
            del record["containers"][name]
            self.world.changed()
            return Response(202, None, {"x-ms-version": BLOB_VERSION})
        if request.query.get("comp") == "list":
            return _list_blobs(request, record, name, container)
        return Response(
            200,
            None,
            {
                "ETag": f'"0x{int(container["created"] * 1000):X}"',
                "Last-Modified": http_date(container["created"]),
                "x-ms-version": BLOB_VERSION,
                "x-ms-lease-state": "available",
                "x-ms-has-immutability-policy": "false",
                "x-ms-has-legal-hold": "false",
            },
        )


def _ids(request: Request) -> tuple[str, str, str]:
    p = request.params
    return p["subscriptionId"], p["resourceGroupName"], p["accountName"]


def _blob_errors(handler: Handler, request: Request) -> Response:
    try:
        return handler(request)
    except BlobError as err:
        return err.response(request.method)


def _list_blobs(request: Request, record: dict[str, Any], name: str, container: dict[str, Any]) -> Response:
    blobs = "".join(
        f"<Blob><Name>{escape(blob_name)}</Name><Properties>"
        f"<Creation-Time>{http_date(blob['created'])}</Creation-Time>"
        f"<Last-Modified>{http_date(blob['created'])}</Last-Modified><Etag>{blob['etag']}</Etag>"
        f"<Content-Length>{len(blob['content'].encode('utf-8'))}</Content-Length>"
        f"<Content-Type>{escape(blob['contentType'])}</Content-Type><BlobType>BlockBlob</BlobType>"
        "</Properties></Blob>"
        for blob_name, blob in sorted(container["blobs"].items())
    )
    return xml_answer(
        f'<EnumerationResults ServiceEndpoint="{escape(request.base_url)}/{record["model"]["name"]}.blob/" '
        f'ContainerName="{escape(name)}"><Blobs>{blobs}</Blobs><NextMarker /></EnumerationResults>'
    )


class BlobError(Exception):
    """A Blob service error: XML body and x-ms-error-code (none for HEAD, as the service answers)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self, method: str) -> Response:
        headers = {
            "x-ms-error-code": self.code,
            "x-ms-version": BLOB_VERSION,
            "Content-Type": "application/xml",
        }
        if method == "HEAD":
            return Response(self.status, None, headers)
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f"<Error><Code>{self.code}</Code><Message>{escape(self.message)}</Message></Error>"
        )
        return Response(self.status, body.encode("utf-8"), headers)


def xml_answer(body: str) -> Response:
    content = ('<?xml version="1.0" encoding="utf-8"?>' + body).encode("utf-8")
    return Response(200, content, {"Content-Type": "application/xml", "x-ms-version": BLOB_VERSION})
