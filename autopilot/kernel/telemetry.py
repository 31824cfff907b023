"""OpenTelemetry: traces from each trigger down to every ARM call.

In Azure (APPLICATIONINSIGHTS_CONNECTION_STRING set) the Azure Monitor distro exports traces, logs
and metrics to Application Insights, authenticating with the app's managed identity (local auth is
off). Locally, AUTOPILOT_OTEL_CONSOLE=true prints spans to stderr. Either way, azure-core's own
tracing is switched to OpenTelemetry, so every SDK call is a child span of the product's span.
Configured once per process, on first use (never at import time).
"""

from __future__ import annotations

import os
import sys
import threading

from opentelemetry import trace

tracer = trace.get_tracer("backup-autopilot")
_lock = threading.Lock()
_done: list[bool] = []  # set once per process


def setup(console: bool) -> None:
    with _lock:
        if _done:
            return
        _done.append(True)
        if os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING"):
            from azure.monitor.opentelemetry import configure_azure_monitor

            options = {}
            client_id = os.environ.get("AZURE_CLIENT_ID")
            if client_id:
                from azure.identity import ManagedIdentityCredential

                options["credential"] = ManagedIdentityCredential(client_id=client_id)
            configure_azure_monitor(logger_name="autopilot", **options)
        elif console:
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
            trace.set_tracer_provider(provider)
        from azure.core.settings import settings

        settings.tracing_implementation = "opentelemetry"
