"""OpenTelemetry: a trigger's span holds the ARM calls it made (azure-core's spans are its children)."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.e2e.conftest import E2E, wait_for

exporter = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def spans() -> InMemorySpanExporter:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


def test_protect_on_create_traces_down_to_each_arm_call(e2e: E2E) -> None:
    e2e.create_vm("rg-e2e-trace", "trace-gold-1", "westeurope", {"backup-policy": "gold"})
    root = wait_for(
        lambda: [
            s
            for s in exporter.get_finished_spans()
            if s.name == "protect_vm" and "trace-gold-1" in str(s.attributes.get("autopilot.vm_id"))
        ],
        timeout=30,
    )
    assert root, "no protect_vm span"
    span = root[0]
    assert span.attributes["autopilot.outcome"] == "protected"
    children = [
        s
        for s in exporter.get_finished_spans()
        if s.context.trace_id == span.context.trace_id and s is not span
    ]
    names = {s.name for s in children}
    # azure-core names its spans after the SDK operation; the HTTP spans carry the armsim URL.
    assert any("VirtualMachinesOperations.get" in n for n in names), names
    assert any("ProtectedItemsOperations.begin_create_or_update" in n for n in names), names
    http = [
        s
        for s in children
        if str(s.attributes.get("url.full") or s.attributes.get("http.url") or "").startswith(e2e.url)
    ]
    assert len(http) >= 4, [s.name for s in children]
