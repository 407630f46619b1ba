"""The house rules of the source tree (see odh_spawner/__init__.py): no import cycles, lazy imports included, in
odh_spawner/ or server_extension/; every module of odh_spawner imports only from its own room or rooms below
it; only a handful of shared basics sit loose in odh_spawner/. An AST walk over every import statement, wherever
it is (module level, inside functions, under `if TYPE_CHECKING`)."""

from __future__ import annotations

import ast
import pathlib

import pytest

pytestmark = pytest.mark.unit

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGES = ("odh_spawner", "server_extension")  # server_extension/odh_hub/ is odh_hub

# The layer of each room of odh_spawner, lowest first; a module may import from its own room or a lower layer.
LAYERS = {
    "": 0,  # the shared basics: errors, naming, quantities, tasks (and the package itself)
    "profiles": 1, "metrics": 1,
    "auth": 2, "host": 2, "kube": 2,
    "credentials": 3,
    "spark": 4, "deploy": 4, "ingest": 4,
    "spawners": 5, "platform": 5,
    "localplatform": 6, "kubeplatform": 6,
    "cli": 7,
}
LOOSE = {"__init__", "errors", "naming", "quantities", "tasks", "cli"}


def modules() -> dict[str, pathlib.Path]:
    found = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join(parts)
            if name == "server_extension.odh_hub" or name.startswith("server_extension.odh_hub."):
                name = name.removeprefix("server_extension.")  # installed as the top-level package odh_hub
            found[name] = path
    return found


MODULES = modules()


def imported(name: str, path: pathlib.Path) -> set[str]:
    """The project modules `name` imports (the deepest module each import statement names)."""
    is_pkg = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".") if is_pkg else name.split(".")[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            # `from package import module` names the module (Python runs the package's __init__ first, as
            # for any of its modules, which is not counted); `from module import name` names the module
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


GRAPH = {name: imported(name, path) for name, path in MODULES.items()}


def room(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "odh_spawner" or len(parts) == 1:
        return ""
    if len(parts) == 2 and parts[1] in LOOSE:
        return "cli" if parts[1] == "cli" else ""
    return parts[1]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the graph as a path [a, b, ..., a], or None (depth-first search, iterative)."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    for start in sorted(graph):
        if state.get(start):
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return path[path.index(child):] + [child]
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(graph.get(child, ())))))
    return None


def test_the_walk_sees_lazy_imports():
    """The walk counts imports inside functions (the kind that hid the earlier cycles)."""
    assert "odh_spawner.localplatform.launcher" in GRAPH["odh_spawner.cli"]  # imported inside main()
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_every_room_is_known():
    rooms = {room(m) for m in MODULES if m.startswith("odh_spawner")}
    assert rooms <= set(LAYERS), f"rooms without a layer in this test and the docs: {rooms - set(LAYERS)}"


def test_modules_import_only_from_their_room_or_below():
    wrong = []
    for module, deps in GRAPH.items():
        if not module.startswith("odh_spawner"):
            continue
        own = room(module)
        for dep in deps:
            if not dep.startswith("odh_spawner"):
                continue
            other = room(dep)
            if other != own and LAYERS[other] >= LAYERS[own]:
                wrong.append(f"{module} ({own or 'basics'}) imports {dep} ({other or 'basics'})")
    assert not wrong, "imports against the layer rule:\n" + "\n".join(sorted(wrong))


def test_only_the_shared_basics_are_loose():
    loose = {p.stem for p in (ROOT / "odh_spawner").glob("*.py")}
    assert loose <= LOOSE, f"loose modules beyond the shared basics: {sorted(loose - LOOSE)}"


def test_the_notebook_side_imports_only_the_pure_ingestion_rules_of_the_hub_side():
    """server_extension runs in users' environments, which ship of odh_spawner only the modules the notebook
    wheel lists (images/notebook-ext/pyproject.toml); it must never reach further (and never the reverse)."""
    reached = {d for m, deps in GRAPH.items() if m.startswith("server_extension") for d in deps
               if d.startswith("odh_spawner")}
    assert reached <= {"odh_spawner.ingest.spec", "odh_spawner.ingest.keys", "odh_spawner.ingest.encode",
                       "odh_spawner.quantities"}
    assert not any(d.startswith("server_extension") for m, deps in GRAPH.items() if m.startswith("odh_spawner")
                   for d in deps)
