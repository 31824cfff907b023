"""Reading infra/ for the tests: every Bicep file parsed once with pycep-parser (the parser checkov
uses, same version), and small helpers over its JSON form.

pycep's JSON keeps literals (quotes dropped) and expressions as nested dicts; a resource or module
declared with `if (...)` or `[for ...]` has its body one level down, under config.config.

The parse tells literals from expressions, which pycep's JSON alone does not: a reference to a
parameter, variable or resource is a `pycep.transformer.BicepElement` (a str), a quoted string a
plain str, a function call or operator an `Expression` (a dict), a `[for ...]` a `Loop` (a dict).
Both compare equal to the plain dicts and strs pycep returns.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"

ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"


class Expression(dict):  # type: ignore[type-arg]
    """A function call or an operator (pycep's {"function": ...} or {"operator": ...})."""


class Loop(dict):  # type: ignore[type-arg]
    """A `[for ...]` value (pycep's {"loop_type", "condition", "config"})."""


class Conditional(dict):  # type: ignore[type-arg]
    """A resource or module body behind `if (...)` (pycep's {"condition", "config"})."""


@functools.cache
def _parser() -> Any:
    from pycep import BicepParser

    return BicepParser(add_line_numbers=True)


@functools.cache
def _transformer() -> type:
    from pycep.transformer import BicepToJson

    class Typed(BicepToJson):
        def function(self, args: Any) -> Any:
            return Expression(super().function(args))

        def operator(self, args: Any) -> Any:
            return Expression(super().operator(args))

        def loop(self, args: Any) -> Any:
            return Loop(super().loop(args))

        def deploy_condition(self, args: Any) -> Any:
            return Conditional(super().deploy_condition(args))

    return Typed


def parse_text(text: str) -> dict[str, Any]:
    """Parse Bicep source as pycep does (its validator, its grammar), with the types above."""
    from pycep.validator import BicepValidator

    if not BicepValidator.is_valid(text):
        raise ValueError("pycep's validator rejects this Bicep text")
    tree = _parser().lark_parser.parse(text)
    parsed: dict[str, Any] = _transformer()(add_line_numbers=True).transform(tree)
    return parsed


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@functools.cache
def parse(path: Path) -> dict[str, Any]:
    return parse_text(path.read_text(encoding="utf-8"))


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def body(declaration: dict[str, Any]) -> dict[str, Any]:
    """The body of a resource or module, whether or not it has a condition or a loop."""
    config: dict[str, Any] = declaration["config"]
    while isinstance(config.get("config"), dict) and ("loop_type" in config or "condition" in config):
        config = config["config"]
    return config


@dataclass(frozen=True)
class Declared:
    path: Path
    symbol: str
    declaration: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.declaration["type"])

    @property
    def body(self) -> dict[str, Any]:
        return body(self.declaration)

    @property
    def start_line(self) -> int:
        return int(self.declaration["__start_line__"])

    @property
    def text(self) -> str:
        source = lines(self.path)
        return "\n".join(source[self.start_line - 1 : int(self.declaration["__end_line__"])])

    def comment_above(self) -> str:
        """The `//` comment block right above the declaration (its decorators skipped)."""
        source = lines(self.path)
        index = self.start_line - 2
        block: list[str] = []
        while index >= 0 and source[index].strip().startswith("//"):
            block.insert(0, source[index].strip()[2:].strip())
            index -= 1
        return " ".join(block)


def resources(path: Path | None = None) -> Iterator[Declared]:
    for file in [path] if path else bicep_files():
        for symbol, declaration in (parse(file).get("resources") or {}).items():
            yield Declared(file, symbol, declaration)


def modules(path: Path) -> Iterator[Declared]:
    for symbol, declaration in (parse(path).get("modules") or {}).items():
        yield Declared(path, symbol, declaration)


def resource(path: Path, symbol: str) -> Declared:
    declaration = (parse(path).get("resources") or {}).get(symbol)
    assert declaration is not None, f"{path.name} declares no resource '{symbol}'"
    return Declared(path, symbol, declaration)


def module(path: Path, symbol: str) -> Declared:
    declaration = (parse(path).get("modules") or {}).get(symbol)
    assert declaration is not None, f"{path.name} declares no module '{symbol}'"
    return Declared(path, symbol, declaration)


def variable(path: Path, name: str) -> Any:
    variables = parse(path).get("variables") or {}
    assert name in variables, f"{path.name} declares no variable '{name}'"
    return variables[name]["value"]


def parameter(path: Path, name: str) -> dict[str, Any]:
    parameters = parse(path).get("parameters") or {}
    assert name in parameters, f"{path.name} declares no parameter '{name}'"
    declared: dict[str, Any] = parameters[name]
    return declared


def function(value: Any) -> dict[str, Any] | None:
    """{"type", "parameters"} when `value` is a function call."""
    if isinstance(value, dict) and "function" in value:
        called: dict[str, Any] = value["function"]
        return called
    return None


_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def guids(text: str) -> list[str]:
    return [match.lower() for match in _GUID.findall(text)]
