"""Every command in the documentation's ```bash blocks is exercised (README.md, docs/*.md,
notebooks/README.md), so the docs cannot drift from the code:

- ``python train.py [-m] OVERRIDES`` (also behind ``srun``/``torchrun``): the config is composed with
  Hydra's compose API (a sweep contributes its first value) and datamodule, task and trainer are
  instantiated on CPU; GPU trainers are composed only. ``python -m baselines.kmer`` likewise.
- ``plantbimoe ...`` and ``python -m <project module> ...``: the whole line is parsed by the tool's own
  argument parser (options, choices, positionals); cheap ones also run for real in a temporary folder.
- ``python -m <other module>``: its ``--help`` runs; ``python -c CODE``: runs.
- ``python benchmarks/SCRIPT.py OPTIONS``: the script parses the options, then ``--help`` ends it.
- ``make TARGET``: TARGET is listed by ``make help``. ``pip install``: named extras exist and named
  packages are the project's (pyproject, Makefile or constraints).
- YAML blocks whose header comment names a ``conf/`` file: the tests compose from a copy of conf/ with
  those files added (so commands may use them), and each composes and instantiates.
Commands that cannot run here are in ALLOWED, each with the reason.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "notebooks" / "README.md"]
ALLOWED = {
    "tensorboard --logdir": "starts a web server (tests/comparison reads the same event files)",
    "jupyter lab": "starts a web server (the notebooks are executed by tests/notebooks)",
    "pip install jupyterlab": "an interactive front end for the notebooks, not a dependency of the project",
    "pip uninstall": "removes a package from the user's environment",
    "python -m venv": "creates a virtual environment (make install does the same)",
    "sudo apt-get install": "a system package, needs root",
}
# project modules run as `python -m NAME`: the module whose main(argv) parses the command line
MODULE_MAINS = {"comparison": "comparison.cli"}
# lines (after normalisation) that also run for real, in a temporary working directory
REAL_RUNS = ("plantbimoe info ", "python -m comparison tensorboard ")
GPU_ACCELERATORS = ("gpu", "cuda")


def fenced_blocks(path: Path, language: str) -> list[tuple[int, str]]:
    """(first line number, text) of each ```language block of a Markdown file."""
    blocks, current, start = [], None, 0
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if current is None and line.strip() == f"```{language}":
            current, start = [], number + 1
        elif current is not None and line.strip() == "```":
            blocks.append((start, "\n".join(current)))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def documented_commands() -> list[tuple[str, str]]:
    """(page:line, command) for every command line of every bash block."""
    found = []
    for page in PAGES:
        for start, text in fenced_blocks(page, "bash"):
            lines = text.replace("\\\n", " ").splitlines()
            for offset, line in enumerate(lines):
                if line.strip() and not line.lstrip().startswith("#"):
                    found.append((f"{page.relative_to(ROOT)}:{start + offset}", line.strip()))
    return found


def documented_configs() -> list[tuple[str, str]]:
    """(conf/ path, text) of YAML blocks with a comment line naming a conf/ file among their first two."""
    found = []
    for page in PAGES:
        for _, text in fenced_blocks(page, "yaml"):
            match = re.search(r"^# (conf/\S+\.yaml)", "\n".join(text.splitlines()[:2]), re.M)
            if match:
                found.append((match.group(1), text))
    return found


COMMANDS = documented_commands()
CONFIGS = documented_configs()


def split(command: str, env: dict[str, str]) -> list[str]:
    """Tokens of `command` without environment assignments (collected into `env`) and launchers,
    with `.venv/bin/` prefixes removed and python3 spelled python."""
    tokens = shlex.split(command, comments=True)
    while tokens and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", tokens[0]):
        name, value = tokens.pop(0).split("=", 1)
        env[name] = value
    if tokens[0] == "srun":
        tokens = tokens[1:]
    if tokens[0] == "torchrun":  # torchrun [options] script args
        script = next(i for i, t in enumerate(tokens) if t.endswith(".py"))
        tokens = ["python", *tokens[script:]]
    tokens[0] = tokens[0].removeprefix(".venv/bin/")
    if tokens[0] == "python3":
        tokens[0] = "python"
    return tokens


def first_of_sweeps(overrides: list[str], loader) -> list[str]:
    """Each sweep override (a,b / glob() / range()) replaced by its first value."""
    plain = []
    for override in OverridesParser.create().parse_overrides(overrides):
        if not override.is_sweep_override():
            plain.append(override.input_line)
            continue
        override.config_loader = loader  # glob() lists the group's options through it
        plain.append(f"{override.get_key_element()}={next(iter(override.sweep_string_iterator()))}")
    return plain


@pytest.fixture(scope="module")
def conf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """conf/ with the documented config files added."""
    conf = tmp_path_factory.mktemp("docs") / "conf"
    shutil.copytree(ROOT / "conf", conf)
    for path, text in CONFIGS:
        (conf.parent / path).write_text(text)
    return conf


def compose_train(conf: Path, overrides: list[str], out: Path) -> DictConfig:
    """The train config as train.py composes it from `conf`, run folders under `out`."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        plain = first_of_sweeps(overrides, loader)
        cfg = compose(config_name="train", overrides=plain, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.root_dir, cfg.paths.output_dir = str(out), str(out / "run")
        del cfg.hydra
    return cfg


def check_hydra_app(conf: Path, args: list[str], out: Path, kmer: bool = False) -> None:
    """Compose `args` of train.py (or baselines.kmer) and instantiate what the run would."""
    compose_only = False
    if "--cfg" in args:
        index = args.index("--cfg")
        args, compose_only = args[:index] + args[index + 2 :], True
    overrides = [a for a in args if a not in ("-m", "--multirun")]
    assert all(not a.startswith("-") for a in overrides), f"unsupported Hydra flag in {args}"
    cfg = compose_train(conf, overrides, out)
    if compose_only or cfg.trainer.accelerator in GPU_ACCELERATORS:
        return
    from hydra.utils import instantiate

    from tasks.runner import build

    if kmer:
        assert hasattr(instantiate(cfg.data), "splits"), "the k-mer baseline needs an MPGB-format dataset"
        return
    datamodule, task, trainer = build(cfg)
    assert trainer.accelerator.__class__.__name__ == "CPUAccelerator"


class Parsed(Exception):
    """Raised instead of running a tool once its parser accepted the command line."""


def parse_only(main, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Let `main(argv)` parse `argv` with its argparse parser, then stop before it runs."""
    original = argparse.ArgumentParser.parse_args

    def parse_args(self, args=None, namespace=None):
        raise Parsed(original(self, args, namespace))

    with monkeypatch.context() as patch, pytest.raises(Parsed):
        patch.setattr(argparse.ArgumentParser, "parse_args", parse_args)
        main(argv)


def project_main(module: str):
    """main(argv) of a project module run with `python -m`, or None for other packages."""
    name = MODULE_MAINS.get(module, module)
    if not (ROOT / "src" / name.split(".")[0]).is_dir():
        return None
    return importlib.import_module(name).main


def check_pip(args: list[str]) -> None:
    """Extras of `.[...]` exist; other requirements are named in the project's install files."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    known = pyproject + (ROOT / "Makefile").read_text() + "".join(
        p.read_text() for p in (ROOT / "constraints").glob("*.txt"))
    extras = set(re.findall(r"^(\w+) = \[", pyproject.split("[project.optional-dependencies]")[1], re.M))
    skip_value = False
    for arg in args[2:]:
        if skip_value or arg.startswith("-"):
            skip_value = arg in ("--index-url", "--extra-index-url", "-c", "-r")
            continue
        if arg.startswith("."):
            wanted = set(re.findall(r"\w+", arg.partition("[")[2]))
            assert wanted <= extras, f"unknown extras {wanted - extras} in {arg}; pyproject has {extras}"
        else:
            name = re.split(r"[<>=!\[ ]", arg)[0]
            assert name in known, f"{name} is not named in pyproject.toml, the Makefile or constraints/"
            if any(c in arg for c in "<>="):
                assert arg in pyproject, f"{arg}: not the specifier pyproject.toml uses"


@pytest.fixture(scope="module")
def make_targets() -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    return subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def test_pages_have_commands() -> None:
    for page in PAGES:
        assert page.is_file(), page
    assert len(COMMANDS) > 30


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_documented_command(where: str, command: str, conf_dir: Path, tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    env: dict[str, str] = {}
    tokens = split(command, env)
    line = shlex.join(tokens)
    for prefix, reason in ALLOWED.items():
        if line.startswith(prefix):
            pytest.skip(f"{where}: {reason}")
    for name, value in env.items():
        if name != "LD_PRELOAD":
            monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    program, args = tokens[0], tokens[1:]
    if program == "python" and args[:1] == ["train.py"]:
        check_hydra_app(conf_dir, args[1:], tmp_path)
    elif program == "python" and args[:2] == ["-m", "baselines.kmer"]:
        check_hydra_app(conf_dir, args[2:], tmp_path, kmer=True)
    elif program == "python" and args[:1] == ["-m"]:
        main = project_main(args[1])
        if main is None:
            with monkeypatch.context() as patch, pytest.raises(SystemExit) as done:
                patch.setattr(sys, "argv", [args[1], "--help"])
                runpy.run_module(args[1], run_name="__main__")
            assert done.value.code in (0, None), f"`python -m {args[1]} --help` failed"
        else:
            parse_only(main, args[2:], monkeypatch)
            if line.startswith(REAL_RUNS):
                assert main(args[2:]) == 0
    elif program == "python" and args[:1] and args[0].startswith("benchmarks/") and args[0].endswith(".py"):
        script = ROOT / args[0]
        assert script.is_file(), f"{where}: {args[0]} does not exist"
        # argparse checks the options given before --help (names, choices, types), then exits 0
        done = subprocess.run([sys.executable, str(script), *args[1:], "--help"], capture_output=True,
                              text=True, env={**os.environ, **env})
        assert done.returncode == 0, f"{where}: `{line}` rejected: {done.stderr[-500:]}"
    elif program == "python" and args[:1] == ["-c"]:
        subprocess.run([sys.executable, *args], check=True, capture_output=True, env={**os.environ, **env})
    elif program == "plantbimoe":
        from plantbimoe.cli import build_parser, main

        build_parser().parse_args(args)
        if line.startswith(REAL_RUNS):
            assert main(args) == 0
    elif program == "make":
        targets = request.getfixturevalue("make_targets")
        for target in (a for a in args if "=" not in a):
            listed = re.search(rf"^\s*{re.escape(target)}\s", targets, re.M)
            assert listed, f"`make {target}`: not in `make help`"
    elif program == "pip" and args[:1] == ["install"]:
        check_pip(tokens)
    else:
        pytest.fail(f"{where}: no rule exercises `{command}`; add one, or add it to ALLOWED with a reason")


@pytest.mark.parametrize(("path", "text"), CONFIGS, ids=[p for p, _ in CONFIGS])
def test_documented_config(path: str, text: str, conf_dir: Path, tmp_path: Path) -> None:
    from hydra.utils import instantiate

    group = str(Path(path).parent.relative_to("conf"))
    experiment = ["experiment=finetune_mpgb"] if group == "data/mpgb" else []
    cfg = compose_train(conf_dir, [*experiment, f"{group}={Path(path).stem}"], tmp_path)
    assert cfg.data.name == yaml.safe_load(text)["name"]
    assert instantiate(cfg.data).name == cfg.data.name
