"""Map between the released checkpoint's parameter names and ours (loading: plantbimoe.pretrained).

Released names (under ``plantbimoe.backbone.``): ``embeddings.word_embeddings.weight``;
``layers.{i}.mixer.norm.*`` (pre-mixer norm), ``layers.{i}.mixer.mixer.mamba_{fwd,rev}.*``,
``layers.{i}.norm.*`` (pre-FFN norm), ``layers.{i}.feed_forward.{gate,up,down}_proj.weight`` (dense)
or ``feed_forward.router.weight`` + ``feed_forward.experts.{e}.{gate,up,down}_proj.weight`` (MoE);
``norm_f.*``; and top-level ``lm_head.weight``. Ours: ``backbone.embeddings.weight``,
``backbone.layers.{i}.{mixer_norm, mixer, ffn_norm, ffn}.*`` with experts stacked as
``ffn.experts.{gate,up,down}_proj`` of shape (E, out, in), ``backbone.norm_f.*``, ``lm_head.weight``.

Tied pairs (lm_head / word embeddings; with weight tying each layer's mamba_rev in_proj/out_proj /
the mamba_fwd ones): ``save_pretrained`` keeps only the first name, the original training script
saves both. Both forms load; when both names are present their tensors must be equal.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

import torch

from .checkpoints import StateDict
from .config import PlantBiMoEConfig

_R = "plantbimoe.backbone."
_TOP = (  # (ours, released) full names or prefixes outside the layers
    ("backbone.embeddings.weight", _R + "embeddings.word_embeddings.weight"),
    ("backbone.norm_f.", _R + "norm_f."),
    ("lm_head.weight", "lm_head.weight"),
)
_LAYER = (  # (ours, released) prefixes inside layers.{i}.; first match wins
    ("mixer_norm.", "mixer.norm."),
    ("mixer.", "mixer.mixer."),
    ("ffn_norm.", "norm."),
    ("ffn.", "feed_forward."),
)
_PROJ = ("gate_proj", "up_proj", "down_proj")
_OURS_LAYER = re.compile(r"backbone\.layers\.(\d+)\.(.+)")
_REL_LAYER = re.compile(re.escape(_R) + r"layers\.(\d+)\.(.+)")
_REL_EXPERT = re.compile(r"feed_forward\.experts\.(\d+)\.(gate_proj|up_proj|down_proj)\.weight")


def _rename(key: str, top: tuple, layer: tuple, layer_re: re.Pattern, src: int) -> str | None:
    dst = 1 - src
    for pair in top:
        if key == pair[src] or (pair[src].endswith(".") and key.startswith(pair[src])):
            return pair[dst] + key[len(pair[src]) :]
    m = layer_re.fullmatch(key)
    if m:
        rest = m.group(2)
        for pair in layer:
            if rest.startswith(pair[src]):
                head = "backbone.layers." if dst == 0 else _R + "layers."
                return f"{head}{m.group(1)}.{pair[dst]}{rest[len(pair[src]) :]}"
    return None


def released_tied_pairs(config: PlantBiMoEConfig) -> Iterator[tuple[str, str]]:
    """(kept, dropped-by-save_pretrained) released names of every tied pair."""
    yield _R + "embeddings.word_embeddings.weight", "lm_head.weight"
    if not (config.bidirectional and config.bidirectional_weight_tie):
        return
    params = ("weight", "bias") if config.ssm_cfg.bias else ("weight",)
    for i in range(config.n_layer):
        for proj in ("in_proj", "out_proj"):
            for p in params:
                base = f"{_R}layers.{i}.mixer.mixer.mamba_%s.{proj}.{p}"
                yield base % "fwd", base % "rev"


def _tensor_list(keys: list[str], limit: int = 20) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def released_to_ours(state_dict: Mapping[str, torch.Tensor], config: PlantBiMoEConfig) -> StateDict:
    """Released names -> our full state dict (tied names included, experts stacked)."""
    sd = dict(state_dict)
    for keep, drop in released_tied_pairs(config):
        if drop in sd:
            if keep in sd and not torch.equal(sd[keep], sd[drop]):
                raise ValueError(f"tied parameters differ: '{keep}' != '{drop}'")
            sd.setdefault(keep, sd[drop])
            del sd[drop]
    out: StateDict = {}
    experts: dict[tuple[str, str], dict[int, torch.Tensor]] = {}
    unexpected = []
    for key, value in sd.items():
        m = _REL_LAYER.fullmatch(key)
        e = _REL_EXPERT.fullmatch(m.group(2)) if m else None
        if e:
            experts.setdefault((m.group(1), e.group(2)), {})[int(e.group(1))] = value
            continue
        name = _rename(key, _TOP, _LAYER, _REL_LAYER, src=1)
        if name is None:
            unexpected.append(key)
        else:
            out[name] = value
    if unexpected:
        raise ValueError(f"unexpected parameter names in the released checkpoint: {_tensor_list(unexpected)}")
    for (layer, proj), by_index in sorted(experts.items()):
        found = sorted(by_index)
        if found != list(range(config.num_experts)):
            raise ValueError(
                f"layer {layer} {proj}: expected experts 0..{config.num_experts - 1}, found {found}"
            )
        out[f"backbone.layers.{layer}.ffn.experts.{proj}"] = torch.stack([by_index[j] for j in found])
    for keep, drop in released_tied_pairs(config):
        ours_keep = _rename(keep, _TOP, _LAYER, _REL_LAYER, src=1)
        if ours_keep in out:
            out[_rename(drop, _TOP, _LAYER, _REL_LAYER, src=1)] = out[ours_keep]
    return out


def ours_to_released(
    state_dict: Mapping[str, torch.Tensor], config: PlantBiMoEConfig, include_tied: bool = True
) -> StateDict:
    """Our names -> released names. ``include_tied=False`` gives the ``save_pretrained`` form
    (second name of each tied pair dropped; no two tensors share memory, ready for safetensors)."""
    out: StateDict = {}
    unexpected = []
    for key, value in state_dict.items():
        m = _OURS_LAYER.fullmatch(key)
        if m and m.group(2) in tuple(f"ffn.experts.{p}" for p in _PROJ):
            proj = m.group(2).rsplit(".", 1)[1]
            for j, w in enumerate(value.unbind(0)):
                out[f"{_R}layers.{m.group(1)}.feed_forward.experts.{j}.{proj}.weight"] = w.clone()
            continue
        name = _rename(key, _TOP, _LAYER, _OURS_LAYER, src=0)
        if name is None:
            unexpected.append(key)
        else:
            out[name] = value
    if unexpected:
        raise ValueError(f"parameter names this converter does not know: {_tensor_list(unexpected)}")
    for keep, drop in released_tied_pairs(config):
        if keep not in out:
            continue
        if drop in out and not torch.equal(out[keep], out[drop]):
            raise ValueError(f"tied parameters differ: '{keep}' != '{drop}'")
        if include_tied:
            out[drop] = out[keep]
        else:
            out.pop(drop, None)
    return out


def describe_weights(state_dict: Mapping[str, torch.Tensor]) -> str:
    """What a state dict in our names looks like (d_model, n_layer, experts, intermediate size),
    to name the mismatch when config.json does not fit its weights."""
    facts = []
    emb = state_dict.get("backbone.embeddings.weight")
    if emb is not None and emb.dim() == 2:
        facts.append(f"d_model={emb.shape[1]}")
    layers = {int(m.group(1)) for k in state_dict if (m := _OURS_LAYER.fullmatch(k))}
    if layers:
        facts.append(f"n_layer={max(layers) + 1}")
    for key, value in state_dict.items():
        if key.endswith("ffn.experts.gate_proj") and value.dim() == 3:
            facts += [f"num_experts={value.shape[0]}", f"intermediate_size={value.shape[1]}"]
            break
    return ", ".join(facts) or "no recognisable backbone tensors"
