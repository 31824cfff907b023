"""HTTP functions of the sample app (a Blueprint, as the product's handlers/ modules are)."""

import json
import os
import time

import azure.functions as func

bp = func.Blueprint()


@bp.route(route="hello", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def hello(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"hello {req.params.get('name', 'world')}")


@bp.route(route="secure", methods=["GET"])  # the app's default auth level: FUNCTION
def secure(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"ok": True}), mimetype="application/json")


@bp.route(route="admin-only", auth_level=func.AuthLevel.ADMIN)
def admin_only(req: func.HttpRequest) -> str:
    return "admin"


@bp.route(route="items/{id}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def items(req: func.HttpRequest) -> func.HttpResponse:
    document = {
        "method": req.method,
        "id": req.route_params.get("id"),
        "params": dict(req.params),
        "header": req.headers.get("x-sample"),
        "body": req.get_body().decode(),
        "url": req.url,
    }
    status = 201 if req.method == "POST" else 200
    return func.HttpResponse(
        json.dumps(document), status_code=status, mimetype="application/json", headers={"X-Item": "yes"}
    )


@bp.route(route="items/special", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def special_item(req: func.HttpRequest) -> str:
    return "the literal route wins"


@bp.route(route="boom", auth_level=func.AuthLevel.ANONYMOUS)
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("secret detail 42")


@bp.route(route="slow", auth_level=func.AuthLevel.ANONYMOUS)
def slow(req: func.HttpRequest) -> str:
    time.sleep(0.5)
    return "done"


@bp.route(route="greeting", auth_level=func.AuthLevel.ANONYMOUS)
def greeting(req: func.HttpRequest) -> str:
    return os.environ.get("GREETING", "")
