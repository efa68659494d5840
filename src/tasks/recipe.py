"""The recipe of a benchmark run as a digest, so that a resumed benchmark can tell a finished run
made with today's configuration from one made with an older one.

The recipe is the run's composed Hydra config (`conf/train.yaml` with the run's overrides),
resolved, without what does not change its numbers (output paths, logging, progress bars, where
the data lives), plus the content of the weights it starts from (`init_from`): retraining a
shipped model changes the digest of every run fine-tuned from it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from plantbimoe.shipped import resolve_model

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
VOLATILE = (
    "paths", "logger", "extras", "tags", "task_name", "callbacks.progress_bar", "compile",
    "trainer.default_root_dir", "data.root", "data.cache_dir", "data.prepare", "data.source",
)  # fmt: skip
"""Config entries a run's numbers never depend on (dotted paths; absent ones are ignored), such
as a speed switch (``compile``). Every other entry counts, so a new config key changes the
digest of every run unless it is listed here or, when only its default keeps the old behaviour,
in NEUTRAL; otherwise expect the benchmark to rerun what it touches."""
NEUTRAL = {"task.head_warmup_steps": 0, "task.head_refit": False, "data.crop": None,
           "task.crop": None, "data.eval_tiles": False, "task.eval_tiles": False}
"""Options added after runs were recorded, with the value that reproduces the behaviour from
before they existed: left out of the digest while they hold it (old runs stay current), counted
once a run sets another value."""


def compose_train(overrides: Sequence[str]) -> DictConfig:
    """`conf/train.yaml` composed with `overrides`, as train.py would, its Hydra node kept and
    registered (so `${hydra:...}` interpolations resolve) and Hydra left uninitialised."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="train", overrides=list(overrides), return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()
    HydraConfig.instance().set_config(cfg)
    return cfg


def recipe(overrides: Sequence[str]) -> dict[str, Any]:
    """The resolved config of a run with `overrides` (its `hydra.*` ones are ignored), without
    the VOLATILE entries and the NEUTRAL ones that hold their neutral value."""
    cfg = compose_train([o for o in overrides if not o.lstrip("+~").startswith("hydra.")])
    with open_dict(cfg):
        del cfg.hydra
        for key in cfg.paths:  # machine- and run-specific: a placeholder that names itself
            cfg.paths[key] = f"<paths.{key}>"
    config: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    for key in VOLATILE:
        _parent(config, key).pop(key.rsplit(".", 1)[-1], None)
    for key, neutral in NEUTRAL.items():
        node, leaf = _parent(config, key), key.rsplit(".", 1)[-1]
        if leaf in node and node[leaf] == neutral:
            del node[leaf]
    return config


def _parent(config: dict[str, Any], key: str) -> dict[str, Any]:
    """The mapping that holds dotted `key`'s last part (an empty one where a parent is absent)."""
    node = config
    for name in key.split(".")[:-1]:
        node = node.get(name) or {}
    return node


def weights_digest(source: str) -> str:
    """sha256 of the weights `source` (a checkpoint file, a model folder or a shipped model's
    name) holds: its model.safetensors for a folder. Hashed once per file version and process
    (a study plans dozens of runs from the same weights)."""
    path = resolve_model(source)
    if path.is_dir():
        path = path / "model.safetensors"
    stat = path.stat()
    return _file_digest(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@cache
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
    """sha256 of `path`'s content; `mtime_ns` and `size` key the cache to this version of it."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def recipe_digest(overrides: Sequence[str]) -> str:
    """A short sha256 of `recipe(overrides)` and, when it starts from weights, their content."""
    config, init = _composed(tuple(overrides))
    blob = {"config": config, "init_weights": weights_digest(init) if init else None}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


@cache
def _composed(overrides: tuple[str, ...]) -> tuple[dict[str, Any], str | None]:
    """`recipe(overrides)` and its init_from, composed once per process (a benchmark asks for the
    digest of each run when it plans and again when it reports; the config files do not change
    meanwhile, the init weights may, so they are hashed per call by version)."""
    config = recipe(overrides)
    init = config.get("init_from")
    return config, str(init) if init else None
