"""Load and export models: released folders, our exported folders and our Lightning checkpoints.

Accepted sources (`read_checkpoint`):
- a released-layout folder: ``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``
  (the ``save_pretrained`` form or the original training script's form with every tied name);
- a folder written by `export_pretrained` (the same layout; a fine-tuned model adds its head
  tensors under ``head.`` in ``model.safetensors`` and its task in ``task.json``);
- a ``.safetensors`` / ``pytorch_model.bin`` file inside such a folder;
- a ``.ckpt`` written by our Lightning tasks (MLM pretraining or a fine-tuned sequence task); the
  model config comes from its ``hyper_parameters``; a sharded ``.ckpt`` folder of ``trainer=fsdp2``
  (torch.distributed.checkpoint) is gathered in memory.
Pickled files are read with ``weights_only=True``; nothing else is ever unpickled. Every load is
strict: missing, unexpected and mis-shaped tensors raise a ValueError listing them.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_path
from .checkpoints import (
    BACKBONE_PREFIXES,
    HEAD_PREFIX,
    MLM_BACKBONE_PREFIX,
    MLM_HEAD_KEY,
    TASK_BACKBONE_PREFIX,
    StateDict,
    compare_keys,
    is_sharded,
    load_file,
    load_safetensors,
    load_sharded,
    read_state_dict,
    read_weights,
)
from .config import PlantBiMoEConfig
from .convert import describe_weights, ours_to_released, released_to_ours
from .mlm import PlantBiMoEForMaskedLM
from .shipped import resolve_model

CONFIG_FILE, WEIGHTS_FILE, TASK_FILE = "config.json", "model.safetensors", "task.json"
# hyper-parameters of a fine-tuned sequence task that define its head and inference behaviour
TASK_KEYS = ("task_type", "num_labels", "pooling", "pooling_window", "head_hidden_size", "rc_eval",
             "crop", "eval_tiles")
_RELEASED_METADATA = {"architectures": ["PlantbimoeForMaskedLM"], "model_type": "plantbimoe"}


@dataclass
class Checkpoint:
    """A model read from any accepted source, in our parameter names."""

    config: PlantBiMoEConfig
    backbone: StateDict  # PlantBiMoEModel names (no prefix)
    source: str
    head: StateDict = field(default_factory=dict)  # fine-tuned head tensors, names under the head
    task: dict[str, Any] | None = None  # fine-tuned task (TASK_KEYS); None for a masked-LM model

    def masked_lm(self) -> PlantBiMoEForMaskedLM:
        """The masked-LM model (CPU, eval mode); lm_head is tied to the word embeddings."""
        model = PlantBiMoEForMaskedLM(self.config, initialize=False)
        model.backbone.load_state_dict(self.backbone, strict=True)
        return model.eval()


def _expected_backbone(config: PlantBiMoEConfig) -> StateDict:
    with torch.device("meta"):
        return PlantBiMoEForMaskedLM(config, initialize=False).backbone.state_dict()


def _checked_backbone(
    config: PlantBiMoEConfig, backbone: StateDict, source: str, config_from: str
) -> StateDict:
    prefixed = {f"backbone.{k}": v for k, v in backbone.items()}
    expected = {f"backbone.{k}": v for k, v in _expected_backbone(config).items()}
    report = compare_keys(expected, prefixed)
    if not report.clean:
        wanted = (f"d_model={config.d_model}, n_layer={config.n_layer}, num_experts={config.num_experts}, "
                  f"intermediate_size={config.intermediate_size}")
        raise ValueError(
            f"{source}: weights do not match {config_from} ({wanted}; the weights look like "
            f"{describe_weights(prefixed)}); wrong shapes or names: {report.problems()}"
        )
    return backbone


def _read_folder(folder: Path, weights: StateDict | None = None) -> Checkpoint:
    config = PlantBiMoEConfig.from_json(folder / CONFIG_FILE)
    tensors = read_weights(folder) if weights is None else weights
    task = None
    if (folder / TASK_FILE).is_file():
        task = json.loads((folder / TASK_FILE).read_text())
    head = {k[len(HEAD_PREFIX) :]: v for k, v in tensors.items() if k.startswith(HEAD_PREFIX)}
    if head and task is None:
        raise ValueError(f"{folder}: head tensors ({', '.join(sorted(head)[:4])}) but no {TASK_FILE}")
    released = {k: v for k, v in tensors.items() if not k.startswith(HEAD_PREFIX)}
    try:
        ours = released_to_ours(released, config)
    except ValueError as e:
        raise ValueError(f"{folder}: {e}") from e
    ours.pop("lm_head.weight", None)  # tied to the embeddings (recovered from them when absent)
    unexpected = sorted(k for k in ours if not k.startswith("backbone."))
    if unexpected:
        raise ValueError(f"{folder}: unexpected tensors: {', '.join(unexpected)}")
    backbone = {k[len("backbone.") :]: v for k, v in ours.items()}
    checked = _checked_backbone(config, backbone, str(folder), CONFIG_FILE)
    return Checkpoint(config, checked, str(folder), head, task)


def _read_lightning(path: Path, ckpt: Any | None = None) -> Checkpoint:
    """A Lightning checkpoint (file, or ``ckpt`` already read from ``path``) of our tasks."""
    if ckpt is None:
        ckpt = load_file(path)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise ValueError(f"{path}: not a Lightning checkpoint (no 'state_dict'); expected a .ckpt "
                         "written by train.py, or a released-layout folder")
    hparams = ckpt.get("hyper_parameters") or {}
    if not isinstance(hparams.get("backbone"), dict):
        raise ValueError(f"{path}: hyper_parameters hold no 'backbone' model config")
    try:
        config = PlantBiMoEConfig.from_dict(hparams["backbone"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: backbone config: {e}") from e
    state: StateDict = ckpt["state_dict"]
    if any(k.startswith(MLM_BACKBONE_PREFIX) for k in state):  # masked-LM pretraining
        prefix, task = MLM_BACKBONE_PREFIX, None
        tied = state.get(MLM_HEAD_KEY)
        if tied is not None and not torch.equal(tied, state.get(prefix + "embeddings.weight", tied)):
            raise ValueError(f"{path}: {MLM_HEAD_KEY} differs from the tied word embeddings")
        others = [k for k in state if not k.startswith(prefix) and k != MLM_HEAD_KEY]
    else:  # fine-tuned sequence task
        prefix = TASK_BACKBONE_PREFIX
        task = {k: hparams.get(k) for k in TASK_KEYS}
        if task["task_type"] is None:
            raise ValueError(f"{path}: neither '{MLM_BACKBONE_PREFIX}*' (pretraining) nor a fine-tuned task")
        others = [k for k in state if not k.startswith((prefix, HEAD_PREFIX))]
    if others:
        raise ValueError(f"{path}: unexpected tensors: {', '.join(sorted(others)[:20])}")
    backbone = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    head = {k[len(HEAD_PREFIX) :]: v for k, v in state.items() if task and k.startswith(HEAD_PREFIX)}
    checked = _checked_backbone(config, backbone, str(path), "the backbone config in hyper_parameters")
    return Checkpoint(config, checked, str(path), head, task)


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read any accepted source (see the module docstring), or a shipped model by its short name
    (`plantbimoe.shipped`), into our names, strictly."""
    path = resolve_model(path)
    if path.is_dir():
        if (path / CONFIG_FILE).is_file():
            return _read_folder(path)
        if is_sharded(path):  # FSDP2
            return _read_lightning(path, load_sharded(path))
        if any(path.glob("*.distcp")):
            tool = "python -m lightning.pytorch.utilities.consolidate_checkpoint"
            raise ValueError(f"{path}: a sharded FSDP checkpoint without its meta.pt; consolidate it "
                             f"into one file first: {tool} {path}")
        raise FileNotFoundError(f"{path}: no {CONFIG_FILE}; expected a released-layout model folder")
    if not path.is_file():
        raise FileNotFoundError(f"model not found: {path}")
    if path.suffix == ".safetensors" or path.name == "pytorch_model.bin":
        if not (path.parent / CONFIG_FILE).is_file():
            raise FileNotFoundError(f"{path}: no {CONFIG_FILE} beside the weights file")
        weights = load_safetensors(path) if path.suffix == ".safetensors" else load_file(path)
        return _read_folder(path.parent, weights)
    return _read_lightning(path)


def _configured(path: Path) -> bool:
    """Whether `path` carries its model config (a folder, or weights beside config.json)."""
    if path.is_dir():
        return not is_sharded(path)
    return path.suffix == ".safetensors" and (path.parent / CONFIG_FILE).is_file()


def backbone_tensors(path: str | Path, expected: Collection[str]) -> tuple[str, StateDict]:
    """(prefix, tensors) to initialise a backbone whose state-dict keys are `expected`: a source
    with its config (folder, ``.safetensors`` beside config.json) through `read_checkpoint`
    (prefix ""); any other file as saved, under the prefix of BACKBONE_PREFIXES that matches most
    of `expected` (``model.backbone.`` for pretraining, ``backbone.`` for fine-tuned runs)."""
    path = resolve_model(path)
    if _configured(path):
        return "", read_checkpoint(path).backbone
    state = read_state_dict(path)
    prefix = max(BACKBONE_PREFIXES, key=lambda p: sum(p + k in state for k in expected))
    return prefix, {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def load_backbone_state(path: str | Path) -> tuple[PlantBiMoEConfig, StateDict]:
    """(model config, backbone state dict in `PlantBiMoEModel` names) of any accepted source,
    e.g. to initialise a fine-tuning backbone (``init_from``)."""
    checkpoint = read_checkpoint(path)
    return checkpoint.config, checkpoint.backbone


def load_released_folder(path: str | Path) -> PlantBiMoEForMaskedLM:
    """The masked-LM model (CPU, eval mode) of a released-layout folder, matched strictly."""
    folder = Path(path)
    if not (folder / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{folder}: no {CONFIG_FILE}; expected a released-layout model folder")
    return _read_folder(folder).masked_lm()


def load_pretrained(path: str | Path, device: str | torch.device = "cpu") -> PlantBiMoEForMaskedLM:
    """The masked-LM model of a released folder, an exported folder or one of our checkpoints, in
    eval mode on `device`; ``model(input_ids).logits`` is (batch, length, vocab)."""
    checkpoint = read_checkpoint(path)
    if checkpoint.task is not None:
        warnings.warn(f"{path}: a fine-tuned {checkpoint.task['task_type']} model; its head is not "
                      "used and the masked-LM head is its (fine-tuned) tied embedding", stacklevel=2)
    return checkpoint.masked_lm().to(device)


def export_config(config: PlantBiMoEConfig, dtype: torch.dtype) -> dict[str, Any]:
    """config.json content: the released fields (and HF metadata), plus any of our options that
    differ from their defaults (so a non-default model reloads as trained)."""
    released = config.to_dict(released_only=True)
    ours, defaults = config.to_dict(), PlantBiMoEConfig().to_dict()
    changed = {k: v for k, v in ours.items() if k not in released and v != defaults[k]}
    metadata = {**_RELEASED_METADATA, "torch_dtype": str(dtype).removeprefix("torch.")}
    return {**metadata, **released, **changed}


def export_pretrained(
    source: str | Path | Checkpoint | PlantBiMoEForMaskedLM, out_dir: str | Path, overwrite: bool = False
) -> Path:
    """Write `source` as a released-layout folder: config.json + model.safetensors (the
    ``save_pretrained`` form, second names of tied pairs dropped), plus ``head.*`` tensors and
    task.json for a fine-tuned model. Written under a temporary name, then renamed."""
    if isinstance(source, PlantBiMoEForMaskedLM):
        source = Checkpoint(source.config, source.backbone.state_dict(), "model")
    checkpoint = source if isinstance(source, Checkpoint) else read_checkpoint(source)
    out = Path(out_dir)
    if out.is_file() or (out.is_dir() and any(out.iterdir()) and not overwrite):
        raise FileExistsError(f"{out} exists and is not an empty folder (overwrite replaces a folder)")
    from safetensors.torch import save_file

    full = {f"backbone.{k}": v for k, v in checkpoint.backbone.items()}
    tensors = ours_to_released(full, checkpoint.config, include_tied=False)
    tensors.update({HEAD_PREFIX + k: v for k, v in checkpoint.head.items()})
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    dtype = checkpoint.backbone["embeddings.weight"].dtype
    with atomic_path(out, replace_folder=True) as tmp:
        tmp.mkdir()
        save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        config = export_config(checkpoint.config, dtype)
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        shutil.copymode(tmp / CONFIG_FILE, tmp / WEIGHTS_FILE)  # safetensors writes 0600
        if checkpoint.task is not None:
            (tmp / TASK_FILE).write_text(json.dumps(checkpoint.task, indent=2, sort_keys=True) + "\n")
    return out
