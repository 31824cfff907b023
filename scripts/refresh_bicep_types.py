"""Regenerate tests/infra/types/: Azure's published definitions for what infra/ declares.

The infra tests check every Bicep `resource` against the Bicep type definitions Azure publishes in
the public repository Azure/bicep-types-az, and azure.yaml and host.json against their published
JSON schemas. The tests read nothing outside this repository, so those definitions are vendored
here, with their provenance, and this script is how they are refreshed:

    git clone https://github.com/Azure/bicep-types-az /tmp/bicep-types-az
    git clone https://github.com/Azure/azure-dev /tmp/azure-dev                # optional
    git clone https://github.com/SchemaStore/schemastore /tmp/schemastore      # optional
    python scripts/refresh_bicep_types.py /tmp/bicep-types-az \\
        --azure-dev /tmp/azure-dev --schemastore /tmp/schemastore

For each `resource` type and API version declared in infra/**/*.bicep it finds the ResourceType of
that name in `generated/<provider>/<namespace>/<api-version>/types.json`, and writes the part of
that file's type graph reachable from it (the same JSON objects, their `$ref`s renumbered) to
tests/infra/types/azure/<type>@<api-version>.json. It copies the two schemas verbatim, each
repository's licence, and writes SOURCES.json (repository, commit, path, licence and sha256 of
every vendored file) and README.md. Nothing but data files is taken from those repositories.

A directory that is not a git work tree needs its commit given (--commit, --azure-dev-commit,
--schemastore-commit): the provenance names the exact commit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
OUT = ROOT / "tests" / "infra" / "types"

BICEP_TYPES = "Azure/bicep-types-az"
AZURE_DEV = "Azure/azure-dev"
SCHEMASTORE = "SchemaStore/schemastore"

# (repository, path in it, vendored name, licence)
SCHEMAS = {
    AZURE_DEV: ("schemas/v1.0/azure.yaml.json", "schemas/azure.yaml.json", "MIT"),
    SCHEMASTORE: ("src/schemas/json/host.json", "schemas/host.json", "Apache-2.0"),
}
LICENSES = {BICEP_TYPES: "MIT", AZURE_DEV: "MIT", SCHEMASTORE: "Apache-2.0"}

RESOURCE = re.compile(r"^\s*resource\s+\w+\s+'([^'@]+)@([^']+)'", re.MULTILINE)
REF = re.compile(r"^#/(\d+)$")


def declared_types(infra: Path = INFRA) -> list[tuple[str, str]]:
    """Every (resource type, API version) a `resource` declaration of infra/ uses, sorted."""
    found = set()
    for path in sorted(infra.rglob("*.bicep")):
        for match in RESOURCE.finditer(path.read_text(encoding="utf-8")):
            found.add((match.group(1), match.group(2)))
    return sorted(found, key=lambda pair: (pair[0].lower(), pair[1]))


def vendored_name(resource_type: str, api_version: str) -> str:
    """tests/infra/types/ relative path of a resource type's definitions."""
    return f"azure/{resource_type}@{api_version}.json"


def git_commit(checkout: Path, given: str | None) -> str:
    if given:
        commit = given
    else:
        done = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "--show-toplevel", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        )
        answer = done.stdout.split()
        if done.returncode != 0 or len(answer) != 2 or Path(answer[0]).resolve() != checkout.resolve():
            raise SystemExit(f"{checkout} is not a git work tree: give its commit (--commit and the like)")
        commit = answer[1]
    if not re.fullmatch(r"[0-9a-f]{40}", commit):
        raise SystemExit(f"not a full commit id: {commit!r}")
    return commit


def _refs(node: Any) -> Iterator[int]:
    """The type indexes a type object refers to ("$ref": "#/N"), anywhere inside it."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                match = REF.match(value)
                if match is None:
                    raise SystemExit(f"a reference outside its file is not supported: {value}")
                yield int(match.group(1))
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _renumber(node: Any, new_index: dict[int, int]) -> Any:
    if isinstance(node, dict):
        result: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and REF.match(value):
                result[key] = f"#/{new_index[int(value[2:])]}"
            else:
                result[key] = _renumber(value, new_index)
        return result
    if isinstance(node, list):
        return [_renumber(item, new_index) for item in node]
    return node


def reachable_graph(types: list[dict[str, Any]], start: int) -> list[dict[str, Any]]:
    """The types reachable from types[start], that one first, in breadth-first order, renumbered.
    A ResourceType's `functions` (list* actions) are left out: nothing here calls them."""
    root = {key: value for key, value in types[start].items() if key != "functions"}
    order = [start]
    seen = {start}
    queue = [root]
    while queue:
        node = queue.pop(0)
        for index in _refs(node):
            if index not in seen:
                seen.add(index)
                order.append(index)
                queue.append(types[index])
    new_index = {old: new for new, old in enumerate(order)}
    graph = [root, *(types[old] for old in order[1:])]
    return [_renumber(node, new_index) for node in graph]


def find_resource(
    checkout: Path, resource_type: str, api_version: str
) -> tuple[str, int, list[dict[str, Any]]]:
    """(path in the repository, index, all types of that file) of a ResourceType."""
    wanted = f"{resource_type}@{api_version}".lower()
    namespace = resource_type.split("/", maxsplit=1)[0].lower()
    candidates = sorted((checkout / "generated").glob(f"*/{namespace}/{api_version}/types.json"))
    for candidate in candidates:
        types: list[dict[str, Any]] = json.loads(candidate.read_text(encoding="utf-8"))
        for index, node in enumerate(types):
            if node.get("$type") == "ResourceType" and str(node.get("name", "")).lower() == wanted:
                return candidate.relative_to(checkout).as_posix(), index, types
    looked = (
        ", ".join(str(c.relative_to(checkout)) for c in candidates) or "no types.json for that API version"
    )
    raise SystemExit(f"{resource_type}@{api_version}: no such ResourceType in {looked}")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def refresh(
    bicep_types: Path,
    commit: str,
    schemas: dict[str, tuple[Path, str]],
    out: Path = OUT,
    infra: Path = INFRA,
) -> dict[str, Any]:
    """Rewrite `out` from the checkouts; returns what SOURCES.json says."""
    previous: dict[str, Any] = {}
    if (out / "SOURCES.json").is_file():
        previous = json.loads((out / "SOURCES.json").read_text(encoding="utf-8"))
    shutil.rmtree(out / "azure", ignore_errors=True)
    files: dict[str, dict[str, Any]] = {}

    for resource_type, api_version in declared_types(infra):
        source_path, index, types = find_resource(bicep_types, resource_type, api_version)
        graph = reachable_graph(types, index)
        name = vendored_name(resource_type, api_version)
        write_json(
            out / name,
            {
                "resourceType": f"{resource_type}@{api_version}",
                "source": {
                    "repository": BICEP_TYPES,
                    "commit": commit,
                    "path": source_path,
                    "index": index,
                    "license": LICENSES[BICEP_TYPES],
                },
                "types": graph,
            },
        )
        files[name] = {
            "repository": BICEP_TYPES,
            "commit": commit,
            "path": source_path,
            "extract": f"types reachable from #/{index} ({resource_type}@{api_version}), renumbered",
            "license": LICENSES[BICEP_TYPES],
        }
    shutil.copyfile(bicep_types / "LICENSE", out / "LICENSE.bicep-types-az")

    for repository, (source_path, name, licence) in SCHEMAS.items():
        license_name = f"LICENSE.{repository.split('/')[1]}"
        if repository in schemas:
            checkout, schema_commit = schemas[repository]
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(checkout / source_path, out / name)
            shutil.copyfile(checkout / "LICENSE", out / license_name)
            files[name] = {
                "repository": repository,
                "commit": schema_commit,
                "path": source_path,
                "extract": "the whole file, verbatim",
                "license": licence,
            }
        elif name in previous.get("files", {}):
            files[name] = dict(previous["files"][name])  # kept as it was
        else:
            raise SystemExit(f"{name} is not vendored yet: give the {repository} checkout")

    for name, entry in files.items():
        entry["sha256"] = sha256(out / name)
    sources = {
        "$comment": "Written by scripts/refresh_bicep_types.py: where each vendored file comes from. "
        "tests/infra checks every sha256.",
        "files": dict(sorted(files.items())),
    }
    write_json(out / "SOURCES.json", sources)
    (out / "README.md").write_text(readme(sources), encoding="utf-8")
    return sources


def readme(sources: dict[str, Any]) -> str:
    lines = [
        "# Vendored type definitions and schemas (data only)",
        "",
        "Azure's published definitions of what `infra/` declares, for `tests/infra` (which reads nothing",
        "outside this repository). Written by `scripts/refresh_bicep_types.py`; do not edit by hand (the",
        "tests compare every file with the sha256 in `SOURCES.json`). To refresh, after changing a",
        "resource's API version in `infra/` for instance:",
        "",
        "```sh",
        "git clone https://github.com/Azure/bicep-types-az /tmp/bicep-types-az",
        "python scripts/refresh_bicep_types.py /tmp/bicep-types-az",
        "# and, for the schemas: --azure-dev /tmp/azure-dev --schemastore /tmp/schemastore",
        "```",
        "",
        "- `azure/<type>@<api-version>.json`: from Azure/bicep-types-az (MIT, `LICENSE.bicep-types-az`),",
        "  the part of `generated/<provider>/<namespace>/<api-version>/types.json` reachable from the",
        "  resource type: the same type objects, with `$ref` indexes renumbered (`types[0]` is the",
        "  ResourceType; `source.index` is its index in the original file).",
        "- `schemas/azure.yaml.json`: azd's schema of `azure.yaml`, from Azure/azure-dev (MIT,",
        "  `LICENSE.azure-dev`), verbatim.",
        "- `schemas/host.json`: the Azure Functions `host.json` schema, from SchemaStore/schemastore",
        "  (Apache-2.0, `LICENSE.schemastore`), verbatim.",
        "",
        "| File | Repository | Commit | Path | Licence |",
        "|---|---|---|---|---|",
    ]
    for name, entry in sources["files"].items():
        lines.append(
            f"| `{name}` | {entry['repository']} | `{entry['commit']}` | `{entry['path']}` | {entry['license']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("bicep_types_az", type=Path, help="checkout of Azure/bicep-types-az")
    parser.add_argument("--commit", help="its commit, if the directory is not a git work tree")
    parser.add_argument("--azure-dev", type=Path, help="checkout of Azure/azure-dev (azure.yaml schema)")
    parser.add_argument("--azure-dev-commit")
    parser.add_argument(
        "--schemastore", type=Path, help="checkout of SchemaStore/schemastore (host.json schema)"
    )
    parser.add_argument("--schemastore-commit")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    schemas: dict[str, tuple[Path, str]] = {}
    if args.azure_dev:
        schemas[AZURE_DEV] = (args.azure_dev, git_commit(args.azure_dev, args.azure_dev_commit))
    if args.schemastore:
        schemas[SCHEMASTORE] = (args.schemastore, git_commit(args.schemastore, args.schemastore_commit))
    sources = refresh(args.bicep_types_az, git_commit(args.bicep_types_az, args.commit), schemas, args.out)
    print(f"wrote {len(sources['files'])} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
