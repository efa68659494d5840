"""The model library stands alone: every `plantbimoe` module imports with the framework above it
(datamodules, tasks) and its dependencies (lightning, hydra, torchmetrics) made unimportable."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import plantbimoe

ABOVE = ("datamodules", "tasks", "lightning", "hydra", "torchmetrics")

SCRIPT = textwrap.dedent(
    """
    import importlib, pkgutil, sys

    BLOCKED = {blocked!r}

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked: the model library imported {{name}}")
            return None

    sys.meta_path.insert(0, Blocker())
    import plantbimoe
    names = [m.name for m in pkgutil.walk_packages(plantbimoe.__path__, "plantbimoe.")]
    failures = []
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as error:
            if "blocked:" in str(error):
                failures.append(f"{{name}}: {{error}}")
    from plantbimoe.cli import main
    for command in ("data", "predict", "embed", "vep", "score-windows", "export", "info"):
        try:
            main([command, "--help"])
        except SystemExit:
            pass
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print(len(names), "modules")
    assert not failures and not leaked, (failures, leaked)
    """
)


def test_model_library_imports_nothing_above_it() -> None:
    script = SCRIPT.format(blocked=ABOVE)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert int(done.stdout.split()[-2]) > 40  # every module was walked


def test_no_import_statement_names_a_package_above() -> None:
    """Imports inside functions too (the subprocess test only sees what runs)."""
    found = []
    for path in sorted(Path(plantbimoe.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            found += [f"{path.name}:{node.lineno} {n}" for n in names if n.split(".")[0] in ABOVE]
    assert not found, found


def test_cli_imports_only_the_chosen_subcommand() -> None:
    script = (
        "import sys\n"
        "from plantbimoe.cli import build_parser\n"
        "build_parser().parse_args(['export', 'a', 'b'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('plantbimoe.commands.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['plantbimoe.commands.common', 'plantbimoe.commands.export']", done.stdout
