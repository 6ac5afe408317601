"""``vkdoctor explain``: every code a probe can emit has an entry, and explain prints it.

Why the static check below is complete: a finding can only be built by ``make_finding(table,
code, ...)``, which looks ``code`` up in ``table`` and raises on a code that is not there.  So if
every call passes its own module's ``CODES`` and every module with a ``CODES`` table is in
``CODE_MODULES`` (what ``explain`` reads), no code can be emitted without an entry, including
codes built at run time such as ``f"{kind}-library-missing"``.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from conftest import VkWorld, codes, needs_lavapipe

from vkdoctor.cli import main
from vkdoctor.report.codes import CODE_MODULES, all_codes
from vkdoctor.report.model import Severity

REPO = Path(__file__).resolve().parent.parent
ALL = all_codes()


def _modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted((REPO / "vkdoctor").rglob("*.py")) + sorted((REPO / "probes").glob("*.py")):
        relative = path.relative_to(REPO).with_suffix("")
        parts = list(relative.parts)
        if parts[0] == "probes":
            parts = ["vkdoctor", *parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return found


MODULES = _modules()


def _defines_codes(tree: ast.Module) -> bool:
    for node in tree.body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else ([node.target] if isinstance(node, ast.AnnAssign) else [])
        )
        if any(isinstance(t, ast.Name) and t.id == "CODES" for t in targets):
            return True
    return False


def _calls(tree: ast.Module, name: str) -> list[ast.Call]:
    return [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
        and (
            (isinstance(n.func, ast.Name) and n.func.id == name)
            or (isinstance(n.func, ast.Attribute) and n.func.attr == name)
        )
    ]


def test_every_module_with_a_code_table_is_read_by_explain() -> None:
    with_tables = {name for name, tree in MODULES.items() if _defines_codes(tree)}
    assert with_tables == set(CODE_MODULES)


def _table_parameters(tree: ast.Module) -> dict[str, int]:
    """Functions that pass one of their own parameters to make_finding as the table: name ->
    index of that parameter (helpers such as libcheck.loader_complaints(table, code, ...))."""
    found = {}
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef):
            continue
        params = [a.arg for a in func.args.args]
        for call in _calls(func, "make_finding"):  # type: ignore[arg-type]
            table = call.args[0] if call.args else None
            if isinstance(table, ast.Name) and table.id in params:
                found[func.name] = params.index(table.id)
    return found


def test_findings_are_only_built_from_a_modules_own_table() -> None:
    helpers = {
        name: index for tree in MODULES.values() for name, index in _table_parameters(tree).items()
    }
    problems = []
    for name, tree in MODULES.items():
        own = _defines_codes(tree)
        for call in _calls(tree, "make_finding"):
            table = call.args[0] if call.args else None
            if isinstance(table, ast.Name) and table.id == "CODES" and own:
                continue
            if isinstance(table, ast.Name) and any(
                table.id in [a.arg for a in f.args.args] and f.name in helpers
                for f in ast.walk(tree)
                if isinstance(f, ast.FunctionDef)
                and f.lineno <= call.lineno <= (f.end_lineno or f.lineno)
            ):
                continue  # a helper's parameter: its callers are checked below
            problems.append(f"{name}:{call.lineno} make_finding without the module's CODES")
        for helper, index in helpers.items():
            for call in _calls(tree, helper):
                table = call.args[index] if len(call.args) > index else None
                if not (isinstance(table, ast.Name) and table.id == "CODES" and own):
                    problems.append(f"{name}:{call.lineno} {helper} without the module's CODES")
        if name not in ("vkdoctor.report.codes", "vkdoctor.report.model"):
            for call in _calls(tree, "Finding"):
                problems.append(f"{name}:{call.lineno} builds a Finding directly")
    assert helpers  # the helper detection works (libcheck.loader_complaints)
    assert problems == []


def test_literal_codes_are_declared_in_their_module() -> None:
    import importlib

    problems = []
    for name, tree in MODULES.items():
        calls = _calls(tree, "make_finding")
        if not calls:
            continue
        table = importlib.import_module(name).CODES
        for call in calls:
            code = call.args[1] if len(call.args) > 1 else None
            if isinstance(code, ast.Constant) and code.value not in table:
                problems.append(f"{name}:{call.lineno} {code.value!r}")
    assert problems == []


def test_every_code_has_a_complete_entry() -> None:
    # An informational code may need no remedy; anything that warns or fails must say the fix.
    for code, info in ALL.items():
        assert info.code == code
        assert info.title and info.explanation, code
        assert info.remedy or info.severity is Severity.INFO, f"{code} has no remedy"


@needs_lavapipe
def test_codes_from_real_runs_have_entries(world: VkWorld) -> None:
    world.lavapipe()
    world.driver("broken_icd.json", "/nonexistent/libvulkan_broken.so")
    world.driver("not_json.json", "x")
    (world.icd_dir / "not_json.json").write_text("{ nope")
    world.layer("VK_LAYER_test_missing", "/nonexistent/libVkLayer_missing.so")
    emitted = set(codes(world.run(VK_LOADER_TYPO_DEBUG="1")))
    assert {"driver-library-missing", "layer-library-missing", "variable-unknown"} <= emitted
    assert emitted <= set(ALL)


def test_explain_prints_each_code(capsys: pytest.CaptureFixture[str]) -> None:
    for code, info in ALL.items():
        if info.alias_of:
            continue  # test_explain_an_alias_names_the_code_it_was_merged_into
        assert main(["explain", code]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"{code} ({info.severity.value}): {info.title}\n\n{info.explanation}")
        assert not info.remedy or f"Remedy: {info.remedy}" in out
        for cause in info.causes:
            assert f"  - {cause}\n" in out


def test_explain_list_lists_them_all(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == sorted(ALL)


def test_explain_unknown_code_suggests_the_nearest(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "driver-libary-missing"]) == 2
    assert "did you mean driver-library-missing?" in capsys.readouterr().err


def test_explain_json_is_the_code_table(capsys: pytest.CaptureFixture[str]) -> None:
    from vkdoctor.report.codes import all_codes

    assert main(["explain", "no-usable-driver", "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    info = all_codes()["no-usable-driver"]
    assert (data["code"], data["severity"], data["remedy"]) == (
        info.code,
        info.severity.value,
        info.remedy,
    )
    assert main(["explain", "--list", "--json", "-"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == len(all_codes())


GENERIC_REMEDIES = (
    "read the quoted message",
    "fix the culprit named in the findings",
    "disable the culprit named by bisection",
    "fix the findings listed",
    "see the evidence",
)


def test_no_remedy_is_empty_or_generic_for_a_problem() -> None:
    from vkdoctor.report.codes import all_codes
    from vkdoctor.report.model import Severity

    for code, info in all_codes().items():
        lowered = info.remedy.lower()
        assert not any(g in lowered for g in GENERIC_REMEDIES), code
        if info.severity is not Severity.INFO:
            assert len(info.remedy.split()) >= 2, code


MERGED = {
    "dispatch-timeout": "dispatch-hung",
    "dispatch-no-compute-queue": "device-no-compute-queue",
    "kernel-timeout": "kernel-hung",
    "manifest-not-a-file": "manifest-not-regular-file",
}


def test_merged_codes_are_aliases() -> None:
    assert {c: i.alias_of for c, i in ALL.items() if i.alias_of} == MERGED
    for new in MERGED.values():
        assert not ALL[new].alias_of  # one step: an alias never names another alias


def test_explain_an_alias_names_the_code_it_was_merged_into(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for old, new in MERGED.items():
        assert main(["explain", old]) == 0
        out = capsys.readouterr().out
        first, _, rest = out.partition("\n\n")
        assert first == (
            f"{old} is an alias of {new} (the two meant the same and were merged; reports made "
            f"before carry {old})"
        )
        assert rest.startswith(f"{new} ({ALL[new].severity.value}): {ALL[new].title}\n")
        assert main(["explain", old, "--json", "-"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert (data["code"], data["aliases"]) == (
            new,
            sorted(o for o, n in MERGED.items() if n == new),
        )
    assert main(["explain", "--list"]) == 0
    listed = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert listed["dispatch-timeout"].endswith("alias of dispatch-hung")


def test_an_alias_is_built_as_its_new_code() -> None:
    from vkdoctor.kernels import smoke
    from vkdoctor.report.codes import make_finding

    built = make_finding(smoke.CODES, "dispatch-no-compute-queue", "gpu: no compute queue")
    new = ALL["device-no-compute-queue"]
    assert (built.code, built.detail, built.remedy.text) == (new.code, new.explanation, new.remedy)


def test_a_report_carrying_an_old_code_still_renders(tmp_path: Path) -> None:
    """A report written before the merge (the finding says manifest-not-a-file) is shown with the
    old code's own title, and validates."""
    import subprocess
    import sys

    path = tmp_path / "r.json"
    done = subprocess.run(
        [sys.executable, "-m", "vkdoctor", "check", "loader-discovery", "--json", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(path.read_text())
    report["probes"][0]["findings"].append(
        {
            "id": "f-old",
            "code": "manifest-not-a-file",
            "severity": "warn",
            "summary": "/tmp/x.json is a directory",
            "detail": "A *.json entry that is a directory.",
            "evidence": {},
            "remedy": None,
        }
    )
    path.write_text(json.dumps(report))
    for command in (["report", "show", str(path)], ["report", "validate", str(path)]):
        shown = subprocess.run(
            [sys.executable, "-m", "vkdoctor", *command], capture_output=True, text=True, timeout=60
        )
        assert shown.returncode in (0, 1) and "Traceback" not in shown.stderr, shown.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "vkdoctor", "report", "show", "-v", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "/tmp/x.json is a directory" in shown.stdout, shown.stdout


def test_code_texts_cite_no_outside_document_identifiers() -> None:
    """explain prints no identifiers of documents outside the repository (RUN-03, DEV-02)."""
    import re

    outside = re.compile(r"\b[A-Z]{3}-\d\d\b")
    for code, info in ALL.items():
        for text in (info.title, info.explanation, info.remedy, *info.causes):
            assert not outside.search(text), (code, text)
