"""The package's shape: imports run one way (settings <- stages <- Dagster), with no cycle.

Walks every module's imports with the standard library (`ast`, `pkgutil`), at every depth of the
code (a function-level import counts as much as one at the top), so a cycle cannot hide behind an
import moved into a function.
"""

from __future__ import annotations

import ast
import pkgutil
from pathlib import Path

import article_rec_assets

PACKAGE = article_rec_assets.__name__
ROOT = Path(article_rec_assets.__file__).parent

# What each layer may import of the project; a stage never imports Dagster or the Dagster glue.
SETTINGS = "settings"
STAGES = ("ingestion", "catalogue", "recommenders", "evaluation", "publishing", "alerting")
MAY_IMPORT = {
    "settings": set(),
    "ingestion": {"settings"},
    "catalogue": {"settings", "ingestion"},
    "recommenders": {"settings", "ingestion", "catalogue"},
    "evaluation": {"settings", "ingestion", "catalogue", "recommenders"},
    "publishing": {"settings", "catalogue"},
    "alerting": set(),
}
# Function-level imports of the project kept on purpose, with the reason.
LATE_IMPORTS: dict[tuple[str, str], str] = {}


def module_names() -> list[str]:
    names = [PACKAGE]
    for info in pkgutil.walk_packages([str(ROOT)], prefix=f"{PACKAGE}."):
        names.append(info.name)
    return names


def module_file(name: str) -> Path:
    relative = Path(*name.split(".")[1:])
    package = ROOT / relative / "__init__.py"
    return package if package.exists() else (ROOT / relative).with_suffix(".py")


def imports_of(name: str, modules: set[str]) -> dict[str, bool]:
    """The project modules `name` imports, each with whether the import sits inside a function."""
    tree = ast.parse(module_file(name).read_text())
    is_package = module_file(name).name == "__init__.py"
    found: dict[str, bool] = {}

    def add(target: str, nested: bool) -> None:
        if target in modules and target != name:
            found[target] = found.get(target, False) or nested

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    add(alias.name, inner)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = name.split(".")[: len(name.split(".")) - child.level + (1 if is_package else 0)]
                    base = ".".join([*parts, base] if base else parts)
                for alias in child.names:
                    submodule = f"{base}.{alias.name}"
                    add(submodule if submodule in modules else base, inner)
            visit(child, inner)

    visit(tree, False)
    return found


def import_graph() -> dict[str, dict[str, bool]]:
    modules = set(module_names())
    return {name: imports_of(name, modules) for name in sorted(modules)}


def cycles(graph: dict[str, dict[str, bool]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            connect(node)
    return found


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_walk_sees_every_module_and_its_imports() -> None:
    graph = import_graph()
    assert {f"{PACKAGE}.{stage}" for stage in (SETTINGS, *STAGES)} <= set(graph)
    assert f"{PACKAGE}.ingestion.parsing" in graph
    assert f"{PACKAGE}.settings.sites" in graph[f"{PACKAGE}.definitions"] or any(
        f"{PACKAGE}.settings" in target for target in graph[f"{PACKAGE}.partitions"]
    )


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b": False}, "b": {"c": True}, "c": {"a": False}, "d": {"a": False}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b": False}, "b": {}}) == []


def test_no_import_cycle_inside_the_package() -> None:
    assert cycles(import_graph()) == []


def test_imports_run_one_way_settings_then_stages_then_dagster() -> None:
    wrong = []
    for module, targets in import_graph().items():
        allowed = MAY_IMPORT.get(layer(module))
        if allowed is None:
            continue  # the Dagster glue (assets, resources, definitions, ...) may import any stage
        for target in targets:
            if layer(target) != layer(module) and layer(target) not in allowed:
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_stages_and_settings_do_not_import_dagster() -> None:
    wrong = []
    for name in module_names():
        if layer(name) not in (SETTINGS, *STAGES):
            continue
        for node in ast.walk(ast.parse(module_file(name).read_text())):
            if isinstance(node, ast.Import):
                roots = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                roots = [node.module or ""]
            else:
                continue
            wrong += [f"{name} imports {root}" for root in roots if root.split(".")[0] == "dagster"]
    assert wrong == []


def test_no_function_level_import_of_the_project_without_a_reason() -> None:
    late = [
        (module, target)
        for module, targets in import_graph().items()
        for target, nested in targets.items()
        if nested
    ]
    assert sorted(late) == sorted(LATE_IMPORTS)


def test_the_product_never_imports_the_demo_the_tests_or_the_benchmarks() -> None:
    """The demo (article_rec_demo), the tests and the benchmarks use the product, never the other
    way: the image holds the product alone."""
    beside = ("article_rec_demo", "article_rec_assets_tests", "bench")
    wrong = []
    for name in module_names():
        for node in ast.walk(ast.parse(module_file(name).read_text())):
            if isinstance(node, ast.Import):
                roots = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                roots = [node.module or ""] if not node.level else []
            else:
                continue
            wrong += [f"{name} imports {root}" for root in roots if root.split(".")[0] in beside]
    assert wrong == []
