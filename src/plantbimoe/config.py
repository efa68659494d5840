"""Model configuration: the released config.json fields verbatim, plus our own options.

The released checkpoint's ``config.json`` loads unchanged (`PlantBiMoEConfig.from_json`). Hugging Face
metadata keys (``architectures``, ``auto_map``, ...) are kept in ``extra`` and written back by
``to_dict``, so a round trip reproduces the file. Our options default to values that reproduce the
released model.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import atomic_write_text

PRESET_DIR = Path(__file__).parent / "presets"

# Keys a Hugging Face `PretrainedConfig` may write; kept verbatim in `extra`, never interpreted.
HF_METADATA_KEYS = frozenset(
    """_name_or_path architectures auto_map torch_dtype dtype transformers_version model_type _commit_hash
    _attn_implementation return_dict output_hidden_states output_attentions torchscript use_return_dict
    problem_type num_labels id2label label2id tie_word_embeddings is_encoder_decoder is_decoder bos_token_id
    eos_token_id sep_token_id tokenizer_class finetuning_task pruned_heads chunk_size_feed_forward
    task_specific_params prefix""".split()
)


def _check_type(where: str, value: Any, types: tuple[type, ...]) -> None:
    # bool is an int subclass: a flag is never a valid count and a count never a valid flag.
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok:
        names = " or ".join(t.__name__ for t in types)
        raise ValueError(f"config field '{where}' must be {names}, got {value!r}")


def _from_mapping(cls: type, d: Mapping[str, Any], where: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"unknown config key '{where}{unknown[0]}' (known: {', '.join(sorted(names))})")
    return cls(**dict(d))


@dataclass
class SSMConfig:
    """The released ``ssm_cfg``: Mamba-1 mixer hyperparameters (mamba-ssm ``Mamba`` arguments)."""

    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    dt_rank: int | str = "auto"
    dt_min: float = 0.001
    dt_max: float = 0.1
    dt_init: str = "random"
    dt_scale: float = 1.0
    dt_init_floor: float = 1e-4
    conv_bias: bool = True
    bias: bool = False
    use_fast_path: bool = True  # accepted for compatibility; the backend is `scan_backend`

    def __post_init__(self) -> None:
        for name in ("d_state", "d_conv", "expand"):
            _check_type(f"ssm_cfg.{name}", getattr(self, name), (int,))
            if getattr(self, name) < 1:
                raise ValueError(f"config field 'ssm_cfg.{name}' must be >= 1, got {getattr(self, name)}")
        if self.dt_rank != "auto":
            _check_type("ssm_cfg.dt_rank", self.dt_rank, (int,))
            if self.dt_rank < 1:
                raise ValueError(f"config field 'ssm_cfg.dt_rank' must be 'auto' or >= 1, got {self.dt_rank}")
        for name in ("dt_min", "dt_max", "dt_scale", "dt_init_floor"):
            _check_type(f"ssm_cfg.{name}", getattr(self, name), (int, float))
        if not 0 < self.dt_min <= self.dt_max:
            raise ValueError(f"ssm_cfg needs 0 < dt_min <= dt_max, got {self.dt_min}, {self.dt_max}")
        if self.dt_init not in ("random", "constant"):
            raise ValueError(f"ssm_cfg.dt_init must be 'random' or 'constant', got {self.dt_init!r}")
        for name in ("conv_bias", "bias", "use_fast_path"):
            _check_type(f"ssm_cfg.{name}", getattr(self, name), (bool,))


@dataclass
class InitializerConfig:
    """The released ``initializer_cfg``."""

    initializer_range: float = 0.02
    n_residuals_per_layer: int = 1
    rescale_prenorm_residual: bool = True

    def __post_init__(self) -> None:
        _check_type("initializer_cfg.initializer_range", self.initializer_range, (int, float))
        _check_type("initializer_cfg.n_residuals_per_layer", self.n_residuals_per_layer, (int,))
        _check_type("initializer_cfg.rescale_prenorm_residual", self.rescale_prenorm_residual, (bool,))
        if self.initializer_range <= 0 or self.n_residuals_per_layer < 1:
            raise ValueError("initializer_cfg needs initializer_range > 0 and n_residuals_per_layer >= 1")


@dataclass
class PlantBiMoEConfig:
    """PlantBiMoE hyperparameters. Field names up to ``initializer_cfg`` are the released ones."""

    # --- released config.json fields (names verbatim) ---
    d_model: int = 512
    n_layer: int = 16
    vocab_size: int = 12
    pad_vocab_size_multiple: int = 6
    ssm_cfg: SSMConfig = field(default_factory=SSMConfig)
    rms_norm: bool = True
    norm_epsilon: float = 1e-5
    residual_in_fp32: bool = False
    fused_add_norm: bool = True  # accepted; no numerical effect here
    bidirectional: bool = True
    bidirectional_strategy: str = "add"
    bidirectional_weight_tie: bool = True
    intermediate_size: int = 1408
    num_experts: int = 4
    num_experts_per_tok: int = 1
    pad_token_id: int = 4
    initializer_cfg: InitializerConfig = field(default_factory=InitializerConfig)
    # --- our options (defaults reproduce the released model) ---
    moe_every: int = 2
    moe_layers: list[int] | None = None
    router_renormalize: bool = False
    load_balance_loss_weight: float = 0.01
    router_z_loss_weight: float = 0.001
    scan_backend: str = "auto"
    gradient_checkpointing: bool = False
    # --- Hugging Face metadata, kept verbatim ---
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.ssm_cfg, Mapping):
            self.ssm_cfg = _from_mapping(SSMConfig, self.ssm_cfg, "ssm_cfg.")
        if isinstance(self.initializer_cfg, Mapping):
            self.initializer_cfg = _from_mapping(InitializerConfig, self.initializer_cfg, "initializer_cfg.")
        if self.moe_layers is not None:
            self.moe_layers = list(self.moe_layers)
        self.extra = dict(self.extra)
        self._validate()

    def _validate(self) -> None:
        for name in (
            "d_model",
            "n_layer",
            "vocab_size",
            "pad_vocab_size_multiple",
            "intermediate_size",
            "num_experts",
            "num_experts_per_tok",
            "moe_every",
        ):
            _check_type(name, getattr(self, name), (int,))
            if getattr(self, name) < 1:
                raise ValueError(f"config field '{name}' must be >= 1, got {getattr(self, name)}")
        for name in (
            "rms_norm",
            "residual_in_fp32",
            "fused_add_norm",
            "bidirectional",
            "bidirectional_weight_tie",
            "router_renormalize",
            "gradient_checkpointing",
        ):
            _check_type(name, getattr(self, name), (bool,))
        for name in ("norm_epsilon", "load_balance_loss_weight", "router_z_loss_weight"):
            _check_type(name, getattr(self, name), (int, float))
            if getattr(self, name) < 0:
                raise ValueError(f"config field '{name}' must be >= 0, got {getattr(self, name)}")
        _check_type("pad_token_id", self.pad_token_id, (int,))
        if self.num_experts_per_tok > self.num_experts:
            k, e = self.num_experts_per_tok, self.num_experts
            raise ValueError(f"num_experts_per_tok ({k}) must be <= num_experts ({e})")
        if self.bidirectional_strategy not in ("add", "ew_multiply"):
            raise ValueError(
                f"bidirectional_strategy must be 'add' or 'ew_multiply', got {self.bidirectional_strategy!r}"
            )
        if not isinstance(self.scan_backend, str) or not self.scan_backend:
            raise ValueError(f"scan_backend must be a backend name, got {self.scan_backend!r}")
        if self.moe_layers is not None:
            for i in self.moe_layers:
                _check_type("moe_layers[]", i, (int,))
                if not 0 <= i < self.n_layer:
                    raise ValueError(f"moe_layers entry {i} is outside 0..{self.n_layer - 1}")
            if len(set(self.moe_layers)) != len(self.moe_layers):
                raise ValueError(f"moe_layers has duplicates: {self.moe_layers}")
        bad = sorted(set(self.extra) - HF_METADATA_KEYS)
        if bad:
            raise ValueError(f"unknown config key '{bad[0]}'")

    # --- derived values ---
    @property
    def d_inner(self) -> int:
        return self.ssm_cfg.expand * self.d_model

    @property
    def dt_rank(self) -> int:
        r = self.ssm_cfg.dt_rank
        return math.ceil(self.d_model / 16) if r == "auto" else int(r)

    @property
    def padded_vocab_size(self) -> int:
        m = self.pad_vocab_size_multiple
        return (self.vocab_size + m - 1) // m * m

    def moe_layer_indices(self) -> list[int]:
        """Indices of the MoE layers: ``moe_layers`` if set, else (i + 1) % moe_every == 0."""
        if self.moe_layers is not None:
            return sorted(self.moe_layers)
        return [i for i in range(self.n_layer) if (i + 1) % self.moe_every == 0]

    def is_moe_layer(self, i: int) -> bool:
        return i in self.moe_layer_indices()

    # --- (de)serialisation ---
    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PlantBiMoEConfig:
        """Build from a config dict (released layout or ours); unknown keys raise, naming the key."""
        own = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        unknown = sorted(k for k in d if k not in own and k not in HF_METADATA_KEYS)
        if unknown:
            raise ValueError(f"unknown config key '{unknown[0]}' (all unknown: {unknown})")
        kwargs = {k: v for k, v in d.items() if k in own}
        extra = {k: v for k, v in d.items() if k in HF_METADATA_KEYS}
        return cls(**kwargs, extra=extra)

    @classmethod
    def from_json(cls, path: str | Path) -> PlantBiMoEConfig:
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"cannot read model config {path}: {e}") from e
        if not isinstance(d, dict):
            raise ValueError(f"model config {path} must hold a JSON object")
        try:
            return cls.from_dict(d)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from e

    @classmethod
    def preset(cls, name: str) -> PlantBiMoEConfig:
        """A shipped configuration: "base" (the released model) or "tiny" (CPU-friendly)."""
        path = PRESET_DIR / f"{name}.json"
        if not path.is_file():
            names = sorted(p.stem for p in PRESET_DIR.glob("*.json"))
            raise ValueError(f"unknown preset {name!r}; available: {', '.join(names)}")
        return cls.from_json(path)

    def to_dict(self, released_only: bool = False) -> dict[str, Any]:
        """Plain dict; ``released_only`` drops our options, giving the released file's layout."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        d["ssm_cfg"] = dataclasses.asdict(self.ssm_cfg)
        d["initializer_cfg"] = dataclasses.asdict(self.initializer_cfg)
        if released_only:
            for name in _OUR_FIELDS:
                del d[name]
        elif d["moe_layers"] is not None:
            d["moe_layers"] = list(d["moe_layers"])
        return {**self.extra, **d}

    def save_json(self, path: str | Path, released_only: bool = False) -> None:
        """Write as JSON (sorted keys, like Hugging Face), via a temporary file and a rename."""
        atomic_write_text(path, json.dumps(self.to_dict(released_only), indent=2, sort_keys=True) + "\n")


_OUR_FIELDS = (
    "moe_every",
    "moe_layers",
    "router_renormalize",
    "load_balance_loss_weight",
    "router_z_loss_weight",
    "scan_backend",
    "gradient_checkpointing",
)
