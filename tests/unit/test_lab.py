"""The lab's layout is written once (loadtest/lab.py) and agrees with the files it describes; loadtest's
modules import only downwards, so the layers hold and no import circle comes back."""

from __future__ import annotations

import ast
from pathlib import Path

from loadtest import lab

ROOT = Path(__file__).resolve().parents[2]
# Bottom up: a module may import from its own layer or a lower one, never a higher one.
LAYERS = {"lab": 0, "users": 0, "faults": 1, "scoring": 2, "bench": 3, "runs": 4}


def test_every_routing_mode_nginx_has_is_described_once():
    assert lab.MODES == lab.mode_files()  # a new loadbalancer/modes/*.conf needs its line in lab.ROUTINGS
    assert set(lab.STICKY_MODES) | set(lab.SPREADING_MODES) == set(lab.MODES)
    assert lab.REPLICA_ROUTING in lab.STICKY_MODES and lab.DEFAULT_MODE in lab.SPREADING_MODES


def test_the_ring_gives_each_node_the_next_as_buddy():
    assert [lab.buddy(node) for node in lab.APP_NODES] == ["app2", "app3", "app1"]


def test_store_roles_belong_to_their_stores():
    assert {lab.store_of(role) for role in lab.ROLES} == set(lab.HA_STORES)
    assert [lab.store_of(t) for t in ("sentinel-data2", "sentinel1", "cluster4", "redis", "app2")] == [
        "sentinel", "sentinel", "cluster", "redis", ""]


def loadtest_imports() -> dict[str, set[str]]:
    """Module (loadtest.x.y) -> the loadtest modules it imports, anywhere in its body."""
    found = {}
    for path in (ROOT / "loadtest").rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("loadtest"):
                imported |= {module_or_package(node.module, a.name) for a in node.names}
            elif isinstance(node, ast.Import):
                imported |= {a.name for a in node.names if a.name.startswith("loadtest")}
        found[name] = imported - {name}
    return found


def module_or_package(package: str, name: str) -> str:
    """`from package import name`: the module package.name if there is one, else package itself."""
    module = f"{package}.{name}"
    return module if (ROOT / module.replace(".", "/")).with_suffix(".py").exists() else package


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_loadtest_imports_only_downwards():
    upward = [f"{module} -> {target}" for module, targets in loadtest_imports().items() for target in targets
              if layer(module) is not None and layer(target) is not None and layer(target) > layer(module)]
    assert upward == []


def test_loadtest_has_no_import_circle():
    graph = loadtest_imports()
    circles, done = [], set()

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(graph.get(module, ())):
            if target in path:
                circles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target in graph and target not in done:
                visit(target, path + [target])
        done.add(module)

    for module in sorted(graph):
        visit(module, [module])
    assert circles == []
