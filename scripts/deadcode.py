"""`make lint`'s dead-code check: vulture over the repository, less what is called by name from
outside Python's view: armsim's route handlers (named in each service's ROUTES table), the Functions
app's triggers (registered by decorators), pytest's hooks and fixtures, and the methods that the
standard library and azure-core call on our subclasses. Prints what is left and exits 1 if anything
is (see vulture's docs for reading its report)."""

from __future__ import annotations

import fnmatch
import importlib
import pkgutil
import sys
from pathlib import Path

from vulture import Vulture

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PATHS = ["autopilot", "handlers", "function_app.py", "armsim", "devhost", "scripts", "bench", "tests"]
MIN_CONFIDENCE = 60
# Called by a framework, not by our code.
CALLED_BY_NAME = [
    "do_*",  # http.server's request handlers
    "log_message",  # http.server's access log
    "handle_*",  # html.parser.HTMLParser's callbacks
    "daemon_threads",  # socketserver's and http.server's class settings
    "block_on_close",
    "allow_reuse_address",
    "protocol_version",
    "server_version",
    "disable_nagle_algorithm",
    "close_connection",
    "pytest_*",  # pytest's hooks
    "pytestmark",
    "on_request",  # azure-core pipeline policies
    "on_response",
    "get_final_get_url",  # azure-core's ARM polling method
    "get_token_info",  # azure-core's credential protocol
    "tracing_implementation",  # azure-core's settings
    "trace_state",  # azure.functions.Context's attributes, which devhost's Context provides
    "trace_parent",
    "thread_local_storage",
    "function_directory",
    "trace_context",
    "retry_context",
    "frame",  # a signal handler's parameter
    "exitstatus",  # a pytest hook's parameter
    "evt",  # tests/functions: a trigger's parameter named wrongly on purpose
    "verify",  # requests.Session's settings, read by requests
    "trust_env",
    "slow_phases",  # a pytest fixture asked for by a test's parameter, for its effect
]
# Decorators that register a function with a framework (Azure Functions, pytest).
REGISTERING_DECORATORS = ["@bp.*", "@app.*", "@pytest.fixture"]


def route_handlers() -> set[str]:
    """The method names armsim's route tables name."""
    import armsim

    names: set[str] = set()
    for module in pkgutil.walk_packages(armsim.__path__, "armsim."):
        if module.name.endswith(".responses"):
            routes = getattr(importlib.import_module(module.name), "ROUTES", ())
            names.update(endpoint.handler for endpoint in routes)
    return names


def main() -> int:
    vulture = Vulture(ignore_decorators=REGISTERING_DECORATORS)
    vulture.scavenge([str(ROOT / path) for path in PATHS], exclude=["*/.venv/*", "*/node_modules/*"])
    handlers = route_handlers()
    left = [
        item
        for item in vulture.get_unused_code(min_confidence=MIN_CONFIDENCE)
        if item.name not in handlers and not any(fnmatch.fnmatch(item.name, p) for p in CALLED_BY_NAME)
    ]
    for item in left:
        print(item.get_report())
    print(f"dead code: {len(left)} unused name(s) (armsim route handlers known: {len(handlers)})")
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
