"""Mutation testing of the diagnosis core: does the suite notice a small deliberate bug?

A small AST mutator of our own (mutmut 3 runs tests in-process against a copied tree, which
misses the `vkdoctor check` subprocesses most of our tests start, and cannot map the separately
packaged probes/).  For each mutation point of a module it writes the mutated source in place,
runs that module's fast test subset, and counts the mutant killed when the tests fail; the
original is restored after every mutant (and on Ctrl-C).  Measured, never part of CI.

Mutations: comparison flips (== !=, < >=, > <=, in / not in, is / is not), and <-> or, `not x`
-> `x`, True <-> False, integer n -> n + 1, `return x` -> `return None`, a statement -> `pass`.

    nice python benchmarks/mutation.py vkdoctor/diagnosis/remedies.py --max 40
    nice python benchmarks/mutation.py --all            # every module in MODULES
The subset runs without conftest.SLOW_TESTS (hangs, bisections) unless --slow.
Results print as a table; --json writes them (benchmarks/RESULTS.md keeps the figures).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Module -> the test files that cover it (the fast subset a developer would run).
MODULES: dict[str, tuple[str, ...]] = {
    "vkdoctor/diagnosis/remedies.py": (
        "tests/test_remedy_property.py",
        "tests/test_diagnosis.py::test_no_sudo_as_root_and_su_where_sudo_is_missing",
        "tests/test_diagnosis.py::test_installed_packages_are_not_suggested",
        "tests/test_diagnosis.py::test_package_files_are_reinstalled_not_deleted",
        "tests/test_diagnosis.py::test_real_dpkg_names_the_owner_of_a_mesa_manifest",
    ),
    "vkdoctor/loader/exclusions.py": (
        "tests/test_faults_discovery.py",
        "tests/test_records.py",
        "tests/test_driver_enum_real.py",
    ),
    "vkdoctor/diagnosis/links.py": (
        "tests/test_diagnosis.py",
        "tests/test_root_cause_rules.py",
        "tests/test_links_real.py",
        # the dlsym rule: a real dlsym'd command crashing on lavapipe
        "tests/test_trace_crash.py::test_dlsym_trampoline_on_device_without_the_command",
    ),
    "vkdoctor/loader/search.py": ("tests/test_discovery.py", "tests/test_search_real.py"),
    "vkdoctor/loader/manifests.py": (
        "tests/test_discovery.py",
        "tests/test_manifest_fuzz.py",
        "tests/test_manifests_real.py",
        "tests/test_hostile_input.py::test_nul_in_library_path_is_read_as_the_loader_reads_it",
    ),
    "probes/driver_enumeration.py": (
        "tests/test_faults_discovery.py",
        "tests/test_discovery.py",
        "tests/test_manifests_real.py",
        "tests/test_driver_enum_real.py",
        "tests/test_codes_e2e.py::test_driver_with_unresolved_symbols_loads_only_lazily",
    ),
    "probes/layer_enumeration.py": (
        "tests/test_faults_discovery.py",
        "tests/test_discovery.py",
        "tests/test_manifests_real.py",
        "tests/test_layer_enum_real.py",
        "tests/test_codes_e2e.py::test_layer_with_unresolved_symbols",
    ),
    "vkdoctor/engine/bisect.py": (
        "tests/test_instance.py",
        "tests/test_bounded.py",
        "tests/test_bisect_real.py",
    ),
    "vkdoctor/trace/rules/crashes.py": (
        "tests/test_trace_crash.py",
        "tests/test_trace_analysis.py",
        "tests/test_trace_reproducers.py",
        "tests/test_trace_rules_extra.py",
    ),
    "vkdoctor/trace/rules/lifetimes.py": (
        "tests/test_trace_analysis.py",
        "tests/test_trace_reproducers.py",
        "tests/test_trace_rules_extra.py",
    ),
    "vkdoctor/trace/rules/outcome.py": (
        "tests/test_trace_analysis.py",
        "tests/test_trace_command.py",
        "tests/test_trace_fallback.py",
        "tests/test_trace_rules_extra.py",
    ),
    "vkdoctor/trace/rules/proc_addr.py": (
        "tests/test_trace_analysis.py",
        "tests/test_trace_reproducers.py",
    ),
}

_FLIP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}


@dataclass(frozen=True)
class Mutant:
    module: str
    index: int  # the n-th mutation point of its kind walk
    line: int
    kind: str
    description: str


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    killed: bool
    seconds: float
    note: str = ""


def _docstring_nodes(tree: ast.AST) -> set[int]:
    """ids of docstring expressions: mutating them changes nothing a test could see."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0]))
    return found


def _points(tree: ast.AST) -> Iterator[tuple[ast.AST, str, str]]:
    """(node, kind, description) for every mutation point, in a stable order."""
    skip = _docstring_nodes(tree)
    in_function: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                in_function.add(id(inner))
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and type(node.ops[0]) in _FLIP:
            old = type(node.ops[0]).__name__
            yield node, "compare", f"{old} -> {_FLIP[type(node.ops[0])].__name__}"
        elif isinstance(node, ast.BoolOp):
            yield node, "boolop", "and -> or" if isinstance(node.op, ast.And) else "or -> and"
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield node, "not", "not x -> x"
        elif isinstance(node, ast.Constant) and id(node) in in_function:
            if isinstance(node.value, bool):
                yield node, "constant", f"{node.value} -> {not node.value}"
            elif isinstance(node.value, int):
                yield node, "constant", f"{node.value} -> {node.value + 1}"
        elif (
            isinstance(node, ast.Return)
            and node.value is not None
            and not (isinstance(node.value, ast.Constant) and node.value.value is None)
        ):
            yield node, "return", "return x -> return None"
        if (
            isinstance(node, (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Raise))
            and id(node) in in_function
            and id(node) not in skip
        ):
            yield node, "delete", "statement -> pass"


class _Apply(ast.NodeTransformer):
    def __init__(self, target: int, kind: str) -> None:
        self.target, self.kind = target, kind

    def visit(self, node: ast.AST) -> ast.AST:
        node = self.generic_visit(node)
        if id(node) != self.target:
            return node
        if self.kind == "compare":
            assert isinstance(node, ast.Compare)
            node.ops = [_FLIP[type(node.ops[0])](), *node.ops[1:]]
        elif self.kind == "boolop":
            assert isinstance(node, ast.BoolOp)
            node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        elif self.kind == "not":
            assert isinstance(node, ast.UnaryOp)
            return node.operand
        elif self.kind == "constant":
            assert isinstance(node, ast.Constant)
            value = node.value
            return ast.Constant(not value if isinstance(value, bool) else value + 1)
        elif self.kind == "return":
            return ast.Return(value=ast.Constant(None))
        elif self.kind == "delete":
            return ast.Pass()
        return node


def mutants_of(module: str) -> list[Mutant]:
    tree = ast.parse((ROOT / module).read_text())
    return [
        Mutant(module, i, getattr(node, "lineno", 0), kind, text)
        for i, (node, kind, text) in enumerate(_points(tree))
    ]


def mutated_source(mutant: Mutant) -> str:
    tree = ast.parse((ROOT / mutant.module).read_text())
    node, kind, _text = list(_points(tree))[mutant.index]
    tree = _Apply(id(node), kind).visit(tree)
    ast.fix_missing_locations(tree)
    return ast.unparse(tree)


def _run_tests(tests: tuple[str, ...], timeout_s: float, slow: bool) -> tuple[bool, str]:
    """(the tests passed, a note).  A fresh bytecode cache each run: an == -> != mutant has the
    original's size and may share its mtime, so a cached .pyc could run the original.  Without
    ``slow`` the subset's long tests (conftest.SLOW_TESTS: hangs waited out, bisections) are
    left out; those only measured over half a second (tests/slow_measured.py) stay in."""
    marks = () if slow else ("-m", "not slow or measured_slow")
    with tempfile.TemporaryDirectory(prefix="vkdoctor-mut-pyc-") as cache:
        env = {**os.environ, "PYTHONPYCACHEPREFIX": cache}
        try:
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-x",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    *marks,
                    *tests,
                ],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            return False, "timeout"
    return done.returncode == 0, (done.stdout.strip().splitlines() or [""])[-1]


def run(
    module: str,
    limit: int | None,
    seed: int,
    timeout_s: float,
    only: set[int] | None = None,
    extra_tests: tuple[str, ...] = (),
    slow: bool = False,
) -> list[Outcome]:
    tests = MODULES[module] + extra_tests
    path = ROOT / module
    original = path.read_text()
    mutants = mutants_of(module)
    if only:
        mutants = [m for m in mutants if m.index in only]
    elif limit is not None and len(mutants) > limit:
        mutants = sorted(random.Random(seed).sample(mutants, limit), key=lambda m: m.index)
    passed, note = _run_tests(tests, timeout_s, slow)
    if not passed:
        raise SystemExit(f"{module}: the unmutated tests fail ({note}); fix them first")
    outcomes: list[Outcome] = []

    def restore(*_args: object) -> None:
        path.write_text(original)
        raise SystemExit("interrupted; original restored")

    previous = signal.signal(signal.SIGINT, restore)
    try:
        for mutant in mutants:
            source = mutated_source(mutant)
            if source == ast.unparse(ast.parse(original)):
                continue
            path.write_text(source)
            started = time.monotonic()
            try:
                passed, note = _run_tests(tests, timeout_s, slow)
            finally:
                path.write_text(original)
            outcome = Outcome(mutant, not passed, round(time.monotonic() - started, 1), note)
            outcomes.append(outcome)
            mark = "killed " if outcome.killed else "SURVIVED"
            where = f"{module}:{mutant.line} #{mutant.index}"
            print(f"{mark} {where} {mutant.kind}: {mutant.description}", flush=True)
    finally:
        path.write_text(original)
        signal.signal(signal.SIGINT, previous)
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="module paths (keys of MODULES)")
    parser.add_argument("--all", action="store_true", help="every module in MODULES")
    parser.add_argument("--max", type=int, default=None, help="sample at most N mutants each")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--timeout", type=float, default=120.0, help="per mutant, seconds")
    parser.add_argument("--json", type=Path, help="write the outcomes here")
    parser.add_argument("--list", action="store_true", help="list mutation points only")
    parser.add_argument(
        "--index", type=int, action="append", help="run only mutation point N (--list shows N)"
    )
    parser.add_argument(
        "--with-tests", action="append", default=[], help="add a test path to the subset"
    )
    parser.add_argument(
        "--slow", action="store_true", help="also run the subset's tests marked slow"
    )
    args = parser.parse_args(argv)
    modules = list(MODULES) if args.all else args.modules
    unknown = [m for m in modules if m not in MODULES]
    if unknown or not modules:
        parser.error(f"unknown module {unknown}; known: {', '.join(MODULES)}")
    if args.list:
        for module in modules:
            for m in mutants_of(module):
                print(f"{module}:{m.line} #{m.index} {m.kind}: {m.description}")
        return 0
    results: list[Outcome] = []
    for module in modules:
        only = set(args.index) if args.index else None
        outcomes = run(
            module, args.max, args.seed, args.timeout, only, tuple(args.with_tests), args.slow
        )
        results += outcomes
        killed = sum(o.killed for o in outcomes)
        print(f"== {module}: {killed} of {len(outcomes)} killed", flush=True)
    if args.json:
        args.json.write_text(json.dumps([asdict(o) for o in results], indent=1) + "\n")
    total = len(results)
    killed = sum(o.killed for o in results)
    print(f"score: {killed} of {total} killed ({100 * killed / max(total, 1):.0f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
