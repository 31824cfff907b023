"""azure.yaml against azd's published schema, host.json against the Azure Functions host.json schema.

Both schemas are vendored in tests/infra/types/schemas/ (provenance in SOURCES.json there, checked
by test_infra_types.py). Nothing is fetched: a `$ref` to anything outside the vendored file fails
the validation instead of reaching the network.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import exceptions, validators
from referencing import Registry, Resource

from tests.infra.bicep_types import TYPES
from tests.infra.infra_support import ROOT

AZURE_YAML_SCHEMA = TYPES / "schemas" / "azure.yaml.json"
HOST_JSON_SCHEMA = TYPES / "schemas" / "host.json"


def refuse(uri: str) -> Resource[Any]:
    raise LookupError(f"{uri} is not vendored: the infra tests fetch nothing")


def errors(schema_path: Path, instance: Any) -> list[str]:
    assert schema_path.is_file(), (
        f"{schema_path.relative_to(ROOT)} is missing: run scripts/refresh_bicep_types.py"
    )
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    validator_class = validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema, registry=Registry(retrieve=refuse))
    found = list(validator.iter_errors(instance))
    if not found:
        return []
    best = exceptions.best_match(found)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message[:300]}"
        for error in [best, *(e for e in found if e is not best)]
    ]


def azure_yaml() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))
    return loaded


def host_json() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))
    return loaded


def test_azure_yaml_fits_azd_schema() -> None:
    found = errors(AZURE_YAML_SCHEMA, azure_yaml())
    assert not found, "azure.yaml against azd's schema:\n" + "\n".join(found)
    # The file names the schema it is written against (the editor's yaml-language-server).
    first = (ROOT / "azure.yaml").read_text(encoding="utf-8").splitlines()[0]
    schema_id = json.loads(AZURE_YAML_SCHEMA.read_text(encoding="utf-8"))["$id"]
    assert first == f"# yaml-language-server: $schema={schema_id}"


def test_host_json_fits_the_functions_host_schema() -> None:
    found = errors(HOST_JSON_SCHEMA, host_json())
    assert not found, "host.json against the host.json schema:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("schema", "load", "change"),
    [
        (AZURE_YAML_SCHEMA, azure_yaml, lambda d: d["hooks"]["postup"]["posix"].update({"shell": "bash"})),
        (AZURE_YAML_SCHEMA, azure_yaml, lambda d: d.pop("name")),
        (HOST_JSON_SCHEMA, host_json, lambda d: d.update(version="3.0")),
        (HOST_JSON_SCHEMA, host_json, lambda d: d["extensions"]["queues"].update(batchSize=100)),
        (HOST_JSON_SCHEMA, host_json, lambda d: d.update(functionTimeout="ten minutes")),
    ],
    ids=["azd-hook-shell", "azd-no-name", "host-version", "host-queue-batch", "host-timeout"],
)
def test_the_schemas_do_reject_wrong_files(schema: Path, load: Any, change: Any) -> None:
    document = copy.deepcopy(load())
    change(document)
    assert errors(schema, document), "the schema accepted a wrong file: the check would pass silently"
