"""bench/ as a maintained part: its README lists exactly the parts bench/run.py registers, every registered part's
module exists and can be run, and the benchmarks import each other only through public names, without cycles or
sys.path tricks. Static checks only: no benchmark runs here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from bench.run import DERIVED, PARTS, README, readme_table

BENCH = Path(__file__).resolve().parent.parent / "bench"
ROOT = BENCH.parent
MODULES = {path.stem: path for path in sorted(BENCH.glob("*.py")) if path.name != "__init__.py"}


def tree(name: str) -> ast.Module:
    return ast.parse(MODULES[name].read_text(encoding="utf-8"), str(MODULES[name]))


def bench_imports(name: str) -> list[tuple[str, list[str]]]:
    """(bench module, names taken from it) for every import of a bench module in ``name``, at any depth."""
    found = []
    for node in ast.walk(tree(name)):
        if isinstance(node, ast.ImportFrom) and node.module == "bench":
            found += [(alias.name, []) for alias in node.names if alias.name in MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bench."):
            found.append((node.module.removeprefix("bench."), [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name.removeprefix("bench."), []) for a in node.names if a.name.startswith("bench.")]
    return found


def test_readme_lists_the_registered_parts() -> None:
    text = README.read_text(encoding="utf-8")
    assert readme_table() in text, "bench/README.md's parts table is stale: run `python -m bench.run --readme`"


def test_parts_have_distinct_names_and_titles() -> None:
    names = [p.name for p in PARTS]
    titles = [p.title for p in PARTS] + [title for title, _, _ in DERIVED]
    assert len(set(names)) == len(names)
    assert len(set(titles)) == len(titles)


@pytest.mark.parametrize("part", PARTS, ids=lambda p: p.name)
def test_registered_part_module_exists_and_runs(part) -> None:
    module = part.module.removeprefix("bench.")
    assert module in MODULES, f"{part.name}: bench/{module}.py is missing"
    if part.measure is None:  # run.py calls the module's own run(quick)
        functions = {node.name: node for node in tree(module).body if isinstance(node, ast.FunctionDef)}
        assert "run" in functions, f"{part.name}: bench/{module}.py has no top-level run(quick)"
        assert functions["run"].args.args, f"{part.name}: run() must take quick"


@pytest.mark.parametrize(("title", "module", "function"), DERIVED)
def test_derived_section_function_exists(title: str, module: str, function: str) -> None:
    defined = {node.name for node in tree(module.removeprefix("bench.")).body if isinstance(node, ast.FunctionDef)}
    assert function in defined, f"{title}: {module}.{function} is missing"


def test_readme_names_every_bench_module_and_only_files_that_exist() -> None:
    text = README.read_text(encoding="utf-8")
    named = set(re.findall(r"[\w./-]+\.py\b", text))
    for name in named:  # a bare name: a module of bench/ or a script at the root (bot.py)
        places = [ROOT / name] if "/" in name else [BENCH / name, ROOT / name]
        assert any(p.is_file() for p in places), f"bench/README.md names {name}, which does not exist"
    mentioned = {Path(n).stem for n in named if "/" not in n or n.startswith("bench/")}
    assert set(MODULES) - mentioned == set(), "bench/README.md does not say what these modules are"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_sys_path_tricks_and_no_private_imports(name: str) -> None:
    assert "sys.path" not in MODULES[name].read_text(encoding="utf-8"), f"bench/{name}.py touches sys.path"
    for module, names in bench_imports(name):
        private = [n for n in names if n.startswith("_")]
        assert not private, f"bench/{name}.py imports private {private} from bench/{module}.py: move it to common.py"


def test_no_import_cycle_between_bench_modules() -> None:
    graph = {name: {m for m, _ in bench_imports(name) if m in MODULES and m != name} for name in MODULES}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = [*path[path.index(name) :], name]
            pytest.fail(f"import cycle: {' -> '.join(cycle)}")
        if name in done:
            return
        for other in sorted(graph[name]):
            visit(other, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
