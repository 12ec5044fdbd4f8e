"""The layering of `src/peerdp`, checked on the source: no import runs up a floor.

    floor 4  cli, demo, __main__             the faces: the only place for typer and Rich
    floor 3  admin_client                    the admin API as a library
    floor 2  machine, site, dp, agents       the roles, and the link every machine shares
    floor 1  store, content, transfer, security, net, config, logs, simulate
    floor 0  domain (and the package itself) pure rules and vocabularies

A module may import its own package, any package on a lower floor, and a package on its
own floor unless FORBIDDEN names the pair. Every `import` and `from ... import` counts,
inside functions and under TYPE_CHECKING too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
ROOT = "peerdp"

FLOORS: dict[str, int] = {
    ROOT: 0,  # peerdp/__init__.py
    "domain": 0,
    "store": 1,
    "content": 1,
    "transfer": 1,
    "security": 1,
    "net": 1,
    "config": 1,
    "logs": 1,
    "simulate": 1,
    "machine": 2,
    "site": 2,
    "dp": 2,
    "agents": 2,
    "admin_client": 3,
    "cli": 4,
    "demo": 4,
    "__main__": 4,  # peerdp/__main__.py
}

# Pairs on one floor (or inside one package) that must not depend on each other:
# (importer, imported) as dotted paths below `peerdp`, each covering its submodules.
FORBIDDEN: dict[tuple[str, str], str] = {
    ("store", "content"): "storage knows the domain only",
    ("store", "transfer"): "storage knows the domain only",
    ("store", "security"): "storage knows the domain only",
    ("store", "net"): "storage knows the domain only",
    ("store", "config"): "storage knows the domain only (config reads the store, not back)",
    ("store", "logs"): "storage knows the domain only",
    ("security", "store"): "the trust root depends on nothing but the domain",
    ("security", "content"): "the trust root depends on nothing but the domain",
    ("security", "transfer"): "the trust root depends on nothing but the domain",
    ("security", "net"): "the trust root depends on nothing but the domain",
    ("security", "config"): "the trust root depends on nothing but the domain",
    ("security", "logs"): "the trust root depends on nothing but the domain",
    ("content", "transfer"): "downloads build on the content store, not the reverse",
    ("machine", "site"): "a managed machine talks to its site over HTTP only",
    ("machine", "dp"): "the machine link is shared by every role: no role in it",
    ("machine", "agents"): "the machine link is shared by every role: no role in it",
    ("site", "machine"): "the site serves machines over HTTP; it never runs their side",
    ("site", "dp"): "the site talks to its DPs over HTTP only",
    ("site", "agents"): "the site talks to its clients over HTTP only",
    ("dp", "site"): "a DP talks to its site over HTTP only",
    ("dp", "agents"): "the DP roles do not use the client agent (shared code is in machine/)",
    ("agents", "site"): "the client talks to its site over HTTP only",
    ("agents", "dp"): "the client agent is no DP (shared code is in machine/)",
    ("demo", "cli"): "the demo drives the site through admin_client, not the CLI",
    ("site.admin", "site.mp.router"): "admin code takes the MP's services from the site "
    "context, not from the MP's router",
}

# Terminal libraries: only the faces know there is a terminal.
TERMINAL_LIBRARIES = ("typer", "rich")
FACES = ("cli", "demo")


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name, e.g. peerdp.dp.standard
    path: Path
    line: int
    target: str  # dotted name of what is imported (a module, or the package it names from)
    text: str  # the import statement, on one line

    def __str__(self) -> str:
        return f"{self.path.relative_to(SRC.parent)}:{self.line}: {self.text}"


def module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_of(module: str) -> str:
    """The top-level package (or module) of `peerdp` that `module` belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def within(module: str, prefix: str) -> bool:
    dotted = f"{ROOT}.{prefix}"
    return module == dotted or module.startswith(dotted + ".")


def one_line(source: str, node: ast.stmt) -> str:
    """The statement as written, on one line."""
    text = " ".join((ast.get_source_segment(source, node) or "").split())
    return text.replace("( ", "(").replace(", )", ")")


def imports_of(
    importer: str, source: str, path: Path, is_package: bool, modules: frozenset[str]
) -> Iterator[Import]:
    """Every import in `source`, wherever it appears in the file (peerdp's and others)."""
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importer's package
                package = importer if is_package else importer.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            # `from peerdp.x import y` imports the module peerdp.x.y when there is one.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        text = one_line(source, node)
        for target in dict.fromkeys(targets):
            yield Import(importer, path, node.lineno, target, text)


def walk(src: Path = SRC) -> list[Import]:
    """Every import in every module under src/peerdp."""
    files = sorted((src / ROOT).rglob("*.py"))
    modules = frozenset(module_name(path, src) for path in files)
    found: list[Import] = []
    for path in files:
        found.extend(
            imports_of(
                module_name(path, src),
                path.read_text(),
                path,
                path.name == "__init__.py",
                modules,
            )
        )
    return found


def wrong_way(imp: Import) -> str | None:
    """Why `imp` breaks the layering, or None if it does not."""
    if imp.target != ROOT and not imp.target.startswith(ROOT + "."):
        return None  # not ours
    importer, imported = package_of(imp.importer), package_of(imp.target)
    for (left, right), why in FORBIDDEN.items():
        if within(imp.importer, left) and within(imp.target, right):
            return f"{left} must not import {right}: {why}"
    if importer == imported or imported not in FLOORS or importer not in FLOORS:
        return None
    if FLOORS[imported] > FLOORS[importer]:
        return (
            f"{importer} (floor {FLOORS[importer]}) imports {imported} "
            f"(floor {FLOORS[imported]}), a floor above"
        )
    return None


def report(problems: list[tuple[Import, str]]) -> str:
    return "\n".join(f"{imp}\n    {why}" for imp, why in problems)


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    return walk()


def test_every_package_has_a_floor() -> None:
    packages = {package_of(module_name(path)) for path in (SRC / ROOT).rglob("*.py")}
    assert packages - FLOORS.keys() == set(), "give each new package a floor in FLOORS"


def test_no_import_runs_the_wrong_way(imports: list[Import]) -> None:
    problems = [(imp, why) for imp in imports if (why := wrong_way(imp)) is not None]
    if problems:
        pytest.fail("imports against the layering:\n" + report(problems), pytrace=False)


def test_terminal_libraries_only_in_the_faces() -> None:
    problems: list[tuple[Import, str]] = []
    for path in sorted((SRC / ROOT).rglob("*.py")):
        module = module_name(path)
        if package_of(module) in FACES:
            continue
        source = path.read_text()
        for node in ast.walk(ast.parse(source, str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                if name.split(".")[0] in TERMINAL_LIBRARIES:
                    imp = Import(module, path, node.lineno, name, one_line(source, node))
                    problems.append((imp, f"{name} outside {' and '.join(FACES)}"))
    if problems:
        pytest.fail("terminal libraries outside the faces:\n" + report(problems), pytrace=False)


# -- the walker itself: it must find what is there ------------------------------------------


def test_the_walker_finds_every_kind_of_import(tmp_path: Path) -> None:
    source = (
        "from __future__ import annotations\n"
        "import os\n"
        "import peerdp.domain.location\n"
        "from peerdp.content.manifest import Manifest\n"
        "from peerdp import net\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from peerdp.store.models import Client\n"
        "def later() -> None:\n"
        "    from peerdp.security import signing\n"
        "    from . import sibling\n"
        "    from ..mp.router import location_service\n"
    )
    path = tmp_path / "peerdp" / "site" / "admin" / "thing.py"
    modules = frozenset({"peerdp.net", "peerdp.security.signing", "peerdp.site.admin.sibling"})
    found = list(imports_of("peerdp.site.admin.thing", source, path, False, modules))
    ours = sorted((imp.line, imp.target) for imp in found if imp.target.startswith("peerdp"))
    assert ours == [
        (3, "peerdp.domain.location"),
        (4, "peerdp.content.manifest"),
        (5, "peerdp.net"),
        (8, "peerdp.store.models"),
        (10, "peerdp.security.signing"),
        (11, "peerdp.site.admin.sibling"),
        (12, "peerdp.site.mp.router"),
    ]
    assert {imp.text for imp in found if imp.line == 3} == {"import peerdp.domain.location"}
    lazy = next(imp for imp in found if imp.target == "peerdp.site.mp.router")
    assert wrong_way(lazy) is not None
    assert wrong_way(next(imp for imp in found if imp.target == "peerdp.net")) is None


def test_the_walker_finds_known_imports_of_the_real_tree(imports: list[Import]) -> None:
    edges = {(imp.importer, imp.target) for imp in imports}
    # A manifest's digest is the signing module's canonical JSON.
    assert ("peerdp.content.manifest", "peerdp.security.signing") in edges
    # The settings find the default database URL lazily, inside a method.
    assert ("peerdp.config", "peerdp.store.db") in edges
    assert len({imp.importer for imp in imports}) > 50


def test_a_wrong_way_import_is_reported() -> None:
    up = Import("peerdp.domain.x", SRC / "peerdp/domain/x.py", 1, "peerdp.site.app", "import")
    assert wrong_way(up) == "domain (floor 0) imports site (floor 2), a floor above"
    side = Import("peerdp.dp.x", SRC / "peerdp/dp/x.py", 1, "peerdp.agents.client", "import")
    assert str(wrong_way(side)).startswith("dp must not import agents")
    down = Import("peerdp.cli.x", SRC / "peerdp/cli/x.py", 1, "peerdp.site.app", "import")
    assert wrong_way(down) is None
    own = Import("peerdp.dp.x", SRC / "peerdp/dp/x.py", 1, "peerdp.dp.store", "import")
    assert wrong_way(own) is None
    outside = Import("peerdp.dp.x", SRC / "peerdp/dp/x.py", 1, "httpx", "import httpx")
    assert wrong_way(outside) is None
