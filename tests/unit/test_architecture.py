"""The import rules, checked on the code itself (every module of services/ and shared/, its
imports read with `ast`, those inside functions and under `TYPE_CHECKING` too):

- A service package (gateway, scheduler, worker, logger) imports nothing else under
  services/: no other service, and none of the tools below.
- `shared` imports no service and no tool.
- Tools (services/dev, cli, admin, producer, client, probe) start, drive or stand in for the
  services: they may import any service and any tool. Nothing imports them but other tools.
- Importing `services.worker.main` leaves `pymongo` (and its `bson`) and `shared.store` out
  of `sys.modules`: workers never open MongoDB, nor load the code that does (design.md).
  aiohttp stays: a worker serves /healthz and /readyz, and its tools download over HTTP."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("gateway", "scheduler", "worker", "logger")
# `bson` is PyMongo's too (its distribution installs both).
WORKER_MUST_NOT_LOAD = ("pymongo", "bson", "shared.store")


@dataclass(frozen=True)
class Import:
    importer: str  # the importing module, dotted
    source: str  # its file, relative to the root
    line: int
    target: str  # the module imported, dotted
    typing_only: bool  # under `if TYPE_CHECKING:`


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(path: Path, root: Path, known: set[str]) -> list[Import]:
    """Every import in `path`; `from package import module` names the module when it is one
    of the `known` modules."""
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    source = str(path.relative_to(root))
    found: list[Import] = []

    def visit(node: ast.AST, typing_only: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.body:
                visit(statement, True)
            for statement in node.orelse:
                visit(statement, typing_only)
            return
        if isinstance(node, ast.Import):
            found.extend(Import(module, source, node.lineno, alias.name, typing_only)
                         for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                named = f"{base}.{alias.name}"
                found.append(Import(module, source, node.lineno,
                                    named if named in known else base, typing_only))
        for child in ast.iter_child_nodes(node):
            visit(child, typing_only)

    visit(ast.parse(path.read_text(), filename=source), False)
    return found


def project_imports(root: Path) -> list[Import]:
    files = sorted([*(root / "services").rglob("*.py"), *(root / "shared").rglob("*.py")])
    known = {module_name(path, root) for path in files}
    return [found for path in files for found in imports_of(path, root, known)]


def owner(dotted: str) -> str | None:
    """Which part of the code a module belongs to: `shared`, a service's name, `tool`, or
    None (the standard library or a dependency)."""
    parts = dotted.split(".")
    if parts[0] == "shared":
        return "shared"
    if parts[0] != "services" or len(parts) == 1:
        return None
    return parts[1] if parts[1] in SERVICES else "tool"


def violations(imports: list[Import]) -> list[str]:
    """Each import that breaks a rule, as `file:line imports target (why)`."""
    broken = []
    for found in imports:
        importer, imported = owner(found.importer), owner(found.target)
        if imported is None or imported == importer:
            continue
        if importer in SERVICES and imported != "shared":
            why = (f"the {importer} must not import the {imported}" if imported in SERVICES
                   else f"the {importer} must not import a tool")
        elif importer == "shared" and imported != "shared":
            why = "shared/ must import no service and no tool"
        else:
            continue
        broken.append(f"{found.source}:{found.line} imports {found.target} ({why})")
    return broken


def test_no_service_imports_another_and_shared_imports_none() -> None:
    broken = violations(project_imports(ROOT))
    assert not broken, "import rules broken:\n" + "\n".join(broken)


def test_a_broken_rule_is_reported_with_its_file_and_import(tmp_path: Path) -> None:
    """The checker itself: a planted import of the worker by the gateway, and of a service by
    shared/, are both named; an import of shared/ by a service, or of a service by a tool,
    is not."""
    for name, text in {
        "services/gateway/views.py": "from ..worker.annotation import formats\n",
        "services/worker/annotation/__init__.py": "",
        "services/worker/annotation/formats.py": "from shared import gate\n",
        "shared/gate.py": "def later():\n    from services.logger import views\n",
        "services/logger/views.py": "",
        "services/cli.py": "import services.gateway.views\n",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert violations(project_imports(tmp_path)) == [
        "services/gateway/views.py:1 imports services.worker.annotation.formats "
        "(the gateway must not import the worker)",
        "shared/gate.py:2 imports services.logger.views "
        "(shared/ must import no service and no tool)",
    ]


def import_chain(imports: list[Import], start: str, goal: str) -> list[str]:
    """The shortest chain of imports (outside `TYPE_CHECKING`) from `start` to a module of
    `goal` (itself or inside it): why importing `start` loads `goal`."""
    edges: dict[str, list[Import]] = {}
    for found in imports:
        if not found.typing_only:
            edges.setdefault(found.importer, []).append(found)
    came: dict[str, str] = {start: ""}
    queue = deque([start])
    while queue:
        here = queue.popleft()
        for found in edges.get(here, []):
            if found.target == goal or found.target.startswith(goal + "."):
                chain = [f"{found.source}:{found.line} imports {found.target}"]
                while came[here]:
                    chain.append(here)
                    here = came[here]
                return [start, *reversed(chain[1:]), chain[0]]
            if found.target not in came:
                came[found.target] = here
                queue.append(found.target)
    return []


def test_importing_the_worker_loads_neither_pymongo_nor_the_store() -> None:
    """In a fresh interpreter, as `conveyor worker` starts."""
    probe = ("import json, sys, services.worker.main; "
             f"print(json.dumps([m for m in {list(WORKER_MUST_NOT_LOAD)!r} "
             "if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    imports = project_imports(ROOT)
    why = {name: " -> ".join(import_chain(imports, "services.worker.main", name))
           for name in loaded}
    assert not loaded, "importing services.worker.main loads " + "; ".join(
        f"{name} (through {chain or 'an import the checker does not see'})"
        for name, chain in why.items())


def test_the_chain_names_each_import_from_the_worker_to_the_store() -> None:
    """What the message above says when the rule breaks: every module on the way."""
    imports = [
        Import("services.worker.main", "services/worker/main.py", 3, "shared.runtime", False),
        Import("shared.runtime", "shared/runtime.py", 7, "shared.store", False),
        Import("shared.jobs", "shared/jobs.py", 9, "shared.store", True),
    ]
    assert import_chain(imports, "services.worker.main", "shared.store") == [
        "services.worker.main", "shared.runtime", "shared/runtime.py:7 imports shared.store"]
    assert import_chain(imports[2:], "shared.jobs", "shared.store") == []
