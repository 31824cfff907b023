"""Checks Bicep resource bodies against Azure's published resource types.

The types are Azure/bicep-types-az's (the definitions the Bicep compiler itself loads), vendored in
tests/infra/types/azure/<type>@<api-version>.json by scripts/refresh_bicep_types.py: per resource
type, the ResourceType first and every type reachable from it (bicep-types' format: ObjectType,
DiscriminatedObjectType, ArrayType, UnionType, StringLiteralType, StringType, IntegerType,
BooleanType, AnyType; properties carry flags, Required 1, ReadOnly 2, WriteOnly 4,
DeployTimeConstant 8, Identifier 16; ResourceType scopes are Tenant 1, ManagementGroup 2,
Subscription 4, ResourceGroup 8, Extension 16).

What is checked, for each resource body (tests/infra/test_infra_types.py):
- every property key exists in the declared type, with the case Azure declares (Bicep accepts any
  case and warns; ARM's handling of a wrong case differs by resource provider); an object that
  declares properties but also takes any other key (additionalProperties: any) gets no undeclared
  key either, unless OPEN_OBJECT_KEYS lists it;
- no read-only property is set;
- literal values have the declared type: string (length, pattern), int (bounds), bool, one of the
  string literals of an enum; an open enum (a union with `string`, which Bicep accepts any string
  for) too, unless OPEN_ENUM_VALUES lists the value;
- objects recursively (discriminated objects by their discriminator), arrays item by item, loops'
  bodies as items; required properties of literal objects are present;
- the scope the resource is deployed at is one Azure allows for its type.
Values that are expressions (parameters, variables, references, function calls, operators) cannot
be known here: their key is checked, their value is not, except for what an expression writes out
itself (`alternatives`, `merged_objects`): both branches of a conditional `c ? a : b` and both sides
of a coalesce `a ?? b` are checked as the value (either may be it), and the object literals among
union(...)'s arguments as parts of the value (their keys and values, not the required properties,
which another argument may bring).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pycep.transformer import BicepElement

from tests.infra.infra_support import INFRA, ROOT, Expression, Loop, body, parse

TYPES = ROOT / "tests" / "infra" / "types"

REQUIRED, READ_ONLY = 1, 2
SCOPES = {1: "tenant", 2: "managementGroup", 4: "subscription", 8: "resourceGroup", 16: "extension"}
TARGET_SCOPES = {"tenant": 1, "managementGroup": 2, "subscription": 4, "resourceGroup": 8}
SCOPE_FUNCTIONS = {"tenant": 1, "management_group": 2, "subscription": 4, "resource_group": 8}
# Keys of a resource declaration that are Bicep's, not the resource's (pycep adds depends_on to a
# nested child resource).
LANGUAGE_KEYS = {"scope", "parent", "dependsOn", "depends_on"}


# Values outside an open enum's list (a union of string literals and `string`) that ARM is known to
# take: (resource type@api, property path, value). None so far.
OPEN_ENUM_VALUES: set[tuple[str, str, str]] = set()


# Undeclared keys of objects that declare properties and also take any other key
# (additionalProperties: any), known to be taken by ARM: (resource type@api, property path). None.
OPEN_OBJECT_KEYS: set[tuple[str, str]] = set()


class MissingTypes(AssertionError):
    """A resource type and API version has no vendored definition."""


def vendored_path(resource_type: str, api_version: str) -> Path:
    return TYPES / "azure" / f"{resource_type}@{api_version}.json"


@dataclass
class TypeGraph:
    resource_type: str
    types: list[dict[str, Any]]

    def resolve(self, ref: dict[str, Any]) -> dict[str, Any]:
        return self.types[int(str(ref["$ref"]).removeprefix("#/"))]

    @property
    def resource(self) -> dict[str, Any]:
        return self.types[0]

    @property
    def body(self) -> dict[str, Any]:
        return self.resolve(self.resource["body"])

    def describe(self, declared: dict[str, Any], depth: int = 0) -> str:
        """What Azure declares, in words: 'string', "'A' | 'B'", 'object Sku', ..."""
        kind = declared["$type"]
        if kind == "StringLiteralType":
            return repr(declared["value"])
        if kind == "UnionType":
            if depth > 1:
                return "union"
            return " | ".join(self.describe(self.resolve(e), depth + 1) for e in declared["elements"])
        if kind == "ArrayType":
            return f"array of {self.describe(self.resolve(declared['itemType']), depth + 1)}"
        if kind in ("ObjectType", "DiscriminatedObjectType"):
            return f"object {declared.get('name', '')}".strip()
        if kind == "IntegerType":
            bounds = (declared.get("minValue"), declared.get("maxValue"))
            return "int" if bounds == (None, None) else f"int {bounds[0]}..{bounds[1]}"
        return {"StringType": "string", "BooleanType": "bool", "AnyType": "any", "NullType": "null"}.get(
            kind, kind
        )


@functools.cache
def load(resource_type: str, api_version: str) -> TypeGraph:
    path = vendored_path(resource_type, api_version)
    if not path.is_file():
        raise MissingTypes(
            f"no vendored type definitions for {resource_type}@{api_version} ({path.relative_to(ROOT)}): "
            "run scripts/refresh_bicep_types.py"
        )
    document = json.loads(path.read_text(encoding="utf-8"))
    graph = TypeGraph(document["resourceType"], document["types"])
    assert graph.resource["$type"] == "ResourceType", path
    assert str(graph.resource["name"]).lower() == f"{resource_type}@{api_version}".lower(), path
    return graph


@dataclass(frozen=True)
class Problem:
    where: str  # file: resource symbol (type@api)
    path: str  # property path, e.g. properties.siteConfig.ftpsState
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.path or '(body)'}: {self.message}"


@dataclass
class Checker:
    """Walks one resource body (or a value) against a type graph, collecting problems."""

    graph: TypeGraph
    where: str
    problems: list[Problem] = field(default_factory=list)
    keys_checked: int = 0
    values_checked: int = 0
    values_skipped: int = 0

    def report(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.where, path, message))

    # -- values ------------------------------------------------------------------------------
    # One branch per kind of Bicep type, read as a table: splitting it would scatter the table.
    def value(self, declared: dict[str, Any], value: Any, path: str) -> None:  # noqa: C901
        kind = declared["$type"]
        if value is None or kind == "AnyType":
            return
        if unknown(value):
            if not self.expression(declared, value, path):
                self.values_skipped += 1
            return
        if isinstance(value, Loop):
            if kind != "ArrayType":
                self.report(path, f"a [for ...] loop where Azure declares {self.graph.describe(declared)}")
                return
            config = value["config"]
            self.value(self.graph.resolve(declared["itemType"]), config, f"{path}[for]")
            return
        if kind == "UnionType":
            self.union(declared, value, path)
            return
        self.values_checked += 1
        if kind in ("ObjectType", "DiscriminatedObjectType"):
            if not isinstance(value, dict):
                self.mismatch(declared, value, path)
            else:
                self.object(declared, value, path)
        elif kind == "ArrayType":
            if not isinstance(value, list):
                self.mismatch(declared, value, path)
                return
            item = self.graph.resolve(declared["itemType"])
            for bound, ok in (("minLength", lambda n, b: n >= b), ("maxLength", lambda n, b: n <= b)):
                if bound in declared and not ok(len(value), declared[bound]):
                    self.report(path, f"{len(value)} items; Azure declares {bound} {declared[bound]}")
            for index, element in enumerate(value):
                self.value(item, element, f"{path}[{index}]")
        elif kind == "StringLiteralType":
            if not isinstance(value, str):
                self.mismatch(declared, value, path)
            elif not interpolated(value) and value != declared["value"]:
                if value.lower() == str(declared["value"]).lower():
                    self.report(path, f"{value!r} differs in case from Azure's {declared['value']!r}")
                else:
                    self.mismatch(declared, value, path)
        elif kind == "StringType":
            if not isinstance(value, str):
                self.mismatch(declared, value, path)
            elif not interpolated(value):
                self.string(declared, value, path)
        elif kind == "IntegerType":
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not declared.get("minValue", value) <= value <= declared.get("maxValue", value)
            ):
                self.mismatch(declared, value, path)
        elif kind == "BooleanType":
            if not isinstance(value, bool):
                self.mismatch(declared, value, path)
        else:
            self.report(path, f"unsupported type {kind} in the vendored definitions")

    def expression(self, declared: dict[str, Any], value: Any, path: str) -> bool:
        """Check what an expression writes out itself (module docstring); False if it writes out none."""
        branches = alternatives(value)
        if branches:
            for _, branch in branches:
                self.value(declared, branch, path)
            return True
        parts = merged_objects(value)
        if parts and declared["$type"] == "ObjectType":
            for _, part in parts:
                self.values_checked += 1
                self.object(declared, part, path, partial=True)
            return True
        return False

    def string(self, declared: dict[str, Any], value: str, path: str) -> None:
        if "minLength" in declared and len(value) < declared["minLength"]:
            self.report(path, f"{value!r} is shorter than Azure's minLength {declared['minLength']}")
        if "maxLength" in declared and len(value) > declared["maxLength"]:
            self.report(path, f"{value!r} is longer than Azure's maxLength {declared['maxLength']}")
        pattern = declared.get("pattern")
        if pattern:
            try:
                compiled = re.compile(pattern)
            except re.error:
                return  # a .NET-only pattern: not checked
            if not compiled.search(value):
                self.report(path, f"{value!r} does not match Azure's pattern {pattern}")

    def union(self, declared: dict[str, Any], value: Any, path: str) -> None:
        elements = [self.graph.resolve(e) for e in declared["elements"]]
        literals = [str(e["value"]) for e in elements if e["$type"] == "StringLiteralType"]
        if isinstance(value, str) and literals and not interpolated(value) and value not in literals:
            # An enum, closed or open (with `string`): a value outside its list is reported either
            # way. An open enum's other values are legal in Bicep's eyes, but ARM rarely takes them;
            # one it does take goes to OPEN_ENUM_VALUES, with its reason.
            self.values_checked += 1
            same = [literal for literal in literals if literal.lower() == value.lower()]
            if same:
                self.report(path, f"{value!r} differs in case from Azure's {same[0]!r}")
            elif (self.graph.resource_type, path, value) not in OPEN_ENUM_VALUES:
                is_open = any(e["$type"] == "StringType" for e in elements)
                self.report(
                    path,
                    f"{value!r} is not one of Azure's values {literals}"
                    + (
                        " (the enum is open: if ARM takes it, list it in OPEN_ENUM_VALUES)" if is_open else ""
                    ),
                )
            return
        trials = []
        for element in elements:
            trial = Checker(self.graph, self.where)
            trial.value(element, value, path)
            if not trial.problems:
                self.keys_checked += trial.keys_checked
                self.values_checked += trial.values_checked
                self.values_skipped += trial.values_skipped
                return
            trials.append((element, trial))
        structured = [
            trial
            for element, trial in trials
            if element["$type"] in ("ObjectType", "DiscriminatedObjectType")
        ]
        if isinstance(value, dict) and len(structured) == 1:
            self.problems.extend(structured[0].problems)
        else:
            self.mismatch(declared, value, path)

    def mismatch(self, declared: dict[str, Any], value: Any, path: str) -> None:
        shown = json.dumps(value) if not isinstance(value, (dict, list)) else type(value).__name__
        self.report(path, f"{shown} does not fit; Azure declares {self.graph.describe(declared)}")

    # -- objects -----------------------------------------------------------------------------
    def properties_of(
        self, declared: dict[str, Any], value: dict[str, Any], path: str
    ) -> tuple[dict[str, Any], dict[str, Any] | None, bool]:
        """(properties, additionalProperties type, whether required ones can be checked)."""
        if declared["$type"] == "ObjectType":
            additional = declared.get("additionalProperties")
            return (
                dict(declared.get("properties", {})),
                self.graph.resolve(additional) if additional else None,
                True,
            )
        discriminator = declared["discriminator"]
        properties = dict(declared.get("baseProperties", {}))
        elements = {name: self.graph.resolve(ref) for name, ref in declared["elements"].items()}
        given = {key_name(k): v for k, v in value.items()}
        chosen = given.get(discriminator)
        if chosen is None:
            self.report(
                f"{path}.{discriminator}".lstrip("."),
                f"missing: {declared.get('name', 'the object')} is told apart by {discriminator!r}, "
                f"one of {sorted(elements)}",
            )
        elif not isinstance(chosen, str):
            self.report(f"{path}.{discriminator}".lstrip("."), f"{json.dumps(chosen)} is not a string")
        elif not unknown(chosen) and not interpolated(chosen):
            if chosen in elements:
                properties.update(elements[chosen].get("properties", {}))
                properties[discriminator] = {"type": {"$literal": chosen}, "flags": REQUIRED}
                return properties, None, True
            self.report(
                f"{path}.{discriminator}".lstrip("."), f"{chosen!r} is not one of Azure's {sorted(elements)}"
            )
        # Unknown discriminator: any element's properties may appear.
        for element in elements.values():
            for name, prop in element.get("properties", {}).items():
                properties.setdefault(name, prop)
        properties[discriminator] = {"type": {"$literal": None}, "flags": REQUIRED}
        return properties, None, False

    def object(
        self,
        declared: dict[str, Any],
        value: dict[str, Any],
        path: str,
        *,
        top: bool = False,
        existing: bool = False,
        partial: bool = False,
    ) -> None:
        """Check an object's keys and values; its required properties too unless it is an existing
        resource's body or a `partial` one (a part of a union(...))."""
        properties, additional, check_required = self.properties_of(declared, value, path)
        by_lower = {name.lower(): name for name in properties}
        present = set()
        for raw_key, item in value.items():
            key = key_name(raw_key)
            where = f"{path}.{key}".lstrip(".")
            if top and key in LANGUAGE_KEYS:
                continue
            self.keys_checked += 1
            if interpolated(key) or unknown(key):
                if additional is None:
                    self.report(where, "a computed key where Azure declares fixed properties")
                else:
                    self.value(additional, item, where)
                continue
            name = key if key in properties else by_lower.get(key.lower())
            if name is None:
                open_object = additional is not None and additional["$type"] == "AnyType" and properties
                if additional is not None and not open_object:
                    self.value(additional, item, where)  # a map: tags, userAssignedIdentities, ...
                    continue
                if open_object and (self.graph.resource_type, where) in OPEN_OBJECT_KEYS:
                    continue
                writable = sorted(n for n, p in properties.items() if not p.get("flags", 0) & READ_ONLY)
                self.report(
                    where,
                    f"unknown property; {declared.get('name', 'the object')} declares {', '.join(writable)}"
                    + (
                        " (it also takes undeclared keys, which only ARM can judge: if ARM takes this "
                        "one, list it in OPEN_OBJECT_KEYS)"
                        if open_object
                        else ""
                    ),
                )
                continue
            present.add(name)
            if name != key:
                self.report(where, f"Azure declares this property as {name!r} (case differs)")
            prop = properties[name]
            if prop.get("flags", 0) & READ_ONLY:
                self.report(where, f"read-only: Azure sets {name!r} itself ({prop.get('description', '')})")
                continue
            if "$literal" in prop["type"]:
                continue  # the discriminator, already checked
            self.value(self.graph.resolve(prop["type"]), item, where)
        if check_required and not existing and not partial:
            for name, prop in properties.items():
                flags = prop.get("flags", 0)
                if flags & REQUIRED and not flags & READ_ONLY and name not in present:
                    self.report(f"{path}.{name}".lstrip("."), "missing: Azure declares it required")

    # -- a resource --------------------------------------------------------------------------
    def resource(self, declaration: dict[str, Any], target_scope: str) -> None:
        config = body(declaration)
        existing = bool(declaration.get("existing"))
        self.object(self.graph.body, config, "", top=True, existing=existing)
        if existing:
            for key in config:
                if key_name(key) not in ("name", "parent", "scope"):
                    self.report(key_name(key), "an existing resource takes only name, parent and scope")
            return
        scope = deploy_scope(config.get("scope"), target_scope)
        writable = self.graph.resource.get("writableScopes", self.graph.resource.get("scopeType", 0))
        if scope and writable and not scope & writable:
            allowed = [name for bit, name in SCOPES.items() if bit & writable]
            self.report("scope", f"deployed at {SCOPES[scope]} scope; Azure allows {', '.join(allowed)}")


def key_name(key: str) -> str:
    """A property key as written, less the quotes of a quoted key ('odata.type')."""
    if len(key) >= 2 and key[0] == key[-1] == "'":
        return key[1:-1]
    return key


def unknown(value: Any) -> bool:
    """An expression: a reference to a parameter, variable or resource, or a function or operator."""
    return isinstance(value, (Expression, BicepElement))


def alternatives(value: Any) -> list[tuple[tuple[str, ...], Any]]:
    """The values an expression may take that it writes out, with their paths inside it: the two
    branches of a conditional `c ? a : b`, the operands of a coalesce `a ?? b`; [] for any other.

    pycep's grammar has no operator precedence: `a == 'x' ? b : c`, `!empty(a) ? b : c` and
    `v.s == 'x' ? b : c` come out with the conditional as the right-most operand of the operator
    before it (equals(a, conditional('x', b, c))). Bicep's `?:` binds least of all, so such a
    conditional's branches are the value's own and are taken as such. Parentheses that really put a
    conditional there (`a == (c ? b : d)`) are not told apart; infra/ writes none. pycep also reads
    `x.y ?? z` as `x.(y ?? z)`, which is then not taken for a coalesce."""
    operator = value.get("operator") if isinstance(value, Expression) else None
    if not isinstance(operator, dict):
        return []
    operands: dict[str, Any] = operator.get("operands") or {}
    if operator.get("type") == "coalesce":
        return [(("operator", "operands", name), operand) for name, operand in operands.items()]
    return _conditional_branches(value)


def _conditional_branches(value: Any) -> list[tuple[tuple[str, ...], Any]]:
    """The branches of the conditional `value` is, or that pycep nested right-most in it."""
    operator = value.get("operator") if isinstance(value, Expression) else None
    if not isinstance(operator, dict) or not operator.get("operands"):
        return []
    operands: dict[str, Any] = operator["operands"]
    if operator.get("type") == "conditional":
        return [
            (("operator", "operands", name), operands[name])
            for name in ("true_value", "false_value")
            if name in operands
        ]
    last = list(operands)[-1]
    return [
        (("operator", "operands", last, *path), branch)
        for path, branch in _conditional_branches(operands[last])
    ]


def merged_objects(value: Any) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """The object literals among the arguments of union(...), with their paths inside the call;
    [] for any other expression."""
    called = value.get("function") if isinstance(value, Expression) else None
    if not isinstance(called, dict) or called.get("type") != "union":
        return []
    return [
        (("function", "parameters", name), argument)
        for name, argument in (called.get("parameters") or {}).items()
        if isinstance(argument, dict) and not unknown(argument)
    ]


def interpolated(value: str) -> bool:
    return "${" in value


def deploy_scope(scope: Any, target_scope: str) -> int:
    """The ScopeType bit a resource is deployed at: its `scope:` (a resource: extension; a scope
    function: that scope), else the file's targetScope."""
    if scope is None:
        return TARGET_SCOPES.get(target_scope, 0)
    if isinstance(scope, Expression) and "function" in scope:
        return SCOPE_FUNCTIONS.get(str(scope["function"].get("type")), 16)
    return 16


def target_scope_of(path: Path) -> str:
    scope = (parse(path).get("globals") or {}).get("scope") or {}
    return str(scope.get("value") or "resourceGroup")


@dataclass
class Declaration:
    path: Path
    symbol: str
    declaration: dict[str, Any]

    @property
    def resource_type(self) -> str:
        return str(self.declaration["type"])

    @property
    def api_version(self) -> str:
        return str(self.declaration["api_version"])

    @property
    def label(self) -> str:
        shown = self.path.relative_to(ROOT).as_posix() if self.path.is_relative_to(ROOT) else str(self.path)
        return f"{shown}: resource {self.symbol} ({self.resource_type}@{self.api_version})"


def declarations(paths: list[Path] | None = None) -> Iterator[Declaration]:
    for path in paths if paths is not None else sorted(INFRA.rglob("*.bicep")):
        for symbol, declaration in (parse(path).get("resources") or {}).items():
            yield Declaration(path, symbol, declaration)


def check(declared: Declaration) -> Checker:
    """Check one resource declaration; MissingTypes if its type is not vendored."""
    checker = Checker(load(declared.resource_type, declared.api_version), declared.label)
    checker.resource(declared.declaration, target_scope_of(declared.path))
    return checker
