"""The package's import graph: no cycles (also through imports inside functions), and the modules the
Snakefile and `sie config` load import no torch."""

import ast
import subprocess
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "src"

TORCH_FREE = [
    "sie.cli",
    "sie.config",
    "sie.workflow",
    "sie.tables",
    "sie.paths",
    "sie.devices",
    "sie.errors",
    "sie.models.registry",
    "sie.evaluate.registry",
    "sie.training.config",
    "sie.data.store",
    "sie.data.split",
    "sie.data.shards",
]
"""What parsing the Snakefile, building `sie`'s parser and resolving a configuration import."""


def package_modules() -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package) of every module under src/sie."""
    modules = {}
    for path in sorted((SOURCE / "sie").rglob("*.py")):
        parts = list(path.relative_to(SOURCE).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def _runtime_imports(tree: ast.AST):
    """Every import statement, at module level or in a function, except under ``if TYPE_CHECKING:``."""
    pending = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        pending.extend(ast.iter_child_nodes(node))


def _imported(node: ast.Import | ast.ImportFrom, package: str, modules: dict) -> list[str]:
    """The dotted names an import statement imports (relative imports resolved from ``package``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
    names = [f"{base}.{alias.name}" for alias in node.names]
    return [name if name in modules else base for name in names]


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (what Python runs: ``from sie.a import b`` imports the
    submodule sie.a.b when there is one, and every package above an imported module except the
    importing module's own packages, which are already being imported)."""
    modules = package_modules()
    graph = {}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in _runtime_imports(ast.parse(path.read_text(), str(path))):
            for target in _imported(node, package, modules):
                if target.split(".")[0] != "sie":
                    continue
                while target not in modules:
                    target = target.rpartition(".")[0]
                pieces = target.split(".")
                for depth in range(1, len(pieces) + 1):
                    prefix = ".".join(pieces[:depth])
                    own_package = name.startswith(prefix + ".")
                    if prefix != name and (prefix == target or (modules[prefix][1] and not own_package)):
                        targets.add(prefix)
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_graph_sees_function_level_imports():
    graph = import_graph()
    assert "sie.data.split" in graph["sie.config"]  # imported inside _check_batch_sizes
    assert "sie.models.methods" in graph["sie.models.files"]  # inside load_pretrained
    assert "sie.config" not in graph["sie.data.objects"]  # only under TYPE_CHECKING
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_workflow_modules_import_no_torch():
    """The modules a Snakefile parse and `sie config` need load, and `sie config` runs, without torch."""
    code = (
        "import importlib, sys\n"
        f"for name in {TORCH_FREE!r}:\n"
        "    importlib.import_module(name)\n"
        "sys.modules['sie.cli'].build_parser()\n"
        "sys.modules['sie.cli'].main(['config', '--configfile', sys.argv[1]])\n"
        "heavy = sorted({'torch', 'torchvision', 'bpy', 'pandas', 'matplotlib'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
    )
    configuration = SOURCE.parent / "configs/test.yaml"
    result = subprocess.run([sys.executable, "-c", code, str(configuration)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
