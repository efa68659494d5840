"""`HFBackbone`: a locally stored Hugging Face encoder behind the PlantBiMoEModel interface."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from plantbimoe_hf.alignment import batch_to_strings, gather_positions, position_index, spans_from_tokens

UNLIMITED = 1_000_000  # tokenizers without a length limit report a huge model_max_length
NO_POOLER = ("bert", "esm")  # encoders whose unused pooling layer is left out


@dataclass(frozen=True)
class HFBackboneConfig:
    """What the task module reads from a backbone's ``config`` (``d_model``), and the source."""

    d_model: int
    path: str
    model_type: str


@dataclass
class HFBackboneOutput:
    """Hidden states at the caller's positions (B, L, d); `aux_loss` is None (no MoE router);
    `token_attention_mask` is the mask of the checkpoint's own tokens the encoder ran on."""

    last_hidden_state: torch.Tensor
    attention_mask: torch.Tensor
    token_attention_mask: torch.Tensor
    aux_loss: None = None


class HFBackbone(nn.Module):
    """An ESM (AgroNT) or BERT (DNABERT-2) checkpoint folder with its tokenizer.

    ``forward(input_ids, attention_mask)`` takes our token ids (one per base, [CLS]/[SEP] at
    the ends, right or left padding), turns each row back into its bases, tokenizes them with
    the checkpoint's tokenizer, runs the encoder and returns each of our positions' hidden state
    (the state of the checkpoint token covering that base), so heads and pooling work unchanged:
    mean pooling weighs each checkpoint token by the bases it covers. Nothing is downloaded:
    `path` must be a local folder. ``trust_remote_code`` runs model code shipped in the folder
    (DNABERT-2 needs it); ``max_tokens`` (default: the tokenizer's ``model_max_length``) makes a
    longer sequence an error rather than a silent truncation.
    """

    def __init__(self, path: str, trust_remote_code: bool = False, max_tokens: int | None = None) -> None:
        super().__init__()
        try:
            from transformers import AutoConfig, AutoModel, AutoTokenizer
        except ImportError as error:
            raise ImportError("backbone=hf needs transformers: pip install 'plantbimoe[hf]'") from error
        folder = Path(path)
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"backbone=hf path={path}: no local checkpoint folder (no config.json)")
        options = {"local_files_only": True, "trust_remote_code": trust_remote_code}
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), **options)
        model_type = AutoConfig.from_pretrained(str(folder), **options).model_type
        pooler = {"add_pooling_layer": False} if model_type in NO_POOLER else {}
        self.model = AutoModel.from_pretrained(str(folder), **options, **pooler).train()  # loads in eval mode
        hf_config = self.model.config
        self.config = HFBackboneConfig(int(hf_config.hidden_size), str(folder), hf_config.model_type)
        limit = max_tokens or int(self.tokenizer.model_max_length)
        self.max_tokens = limit if limit < UNLIMITED else None
        self.init_args = {
            "_target_": f"{type(self).__module__}.{type(self).__name__}",
            "path": str(folder),
            "trust_remote_code": trust_remote_code,
            "max_tokens": max_tokens,
        }

    def _tokenize(self, texts: list[str]) -> tuple[dict[str, torch.Tensor], list[list], list[list[int]]]:
        fast = bool(getattr(self.tokenizer, "is_fast", False))
        encoding = self.tokenizer(
            texts,
            padding=True,
            return_tensors="pt",
            return_special_tokens_mask=True,
            return_offsets_mapping=fast,
        )
        special = encoding.pop("special_tokens_mask").tolist()
        if fast:
            offsets = encoding.pop("offset_mapping").tolist()
            spans = [
                [None if s else tuple(o) for o, s in zip(row, sp, strict=True)]
                for row, sp in zip(offsets, special, strict=True)
            ]
        else:
            spans = [
                spans_from_tokens(text, self.tokenizer.convert_ids_to_tokens(ids), sp)
                for text, ids, sp in zip(texts, encoding["input_ids"].tolist(), special, strict=True)
            ]
        return dict(encoding), spans, special

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> HFBackboneOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids, dtype=torch.bool)
        texts, is_base = batch_to_strings(input_ids, attention_mask)
        encoding, spans, special = self._tokenize(texts)
        length = encoding["input_ids"].shape[1]
        if self.max_tokens is not None and length > self.max_tokens:
            longest = max(len(t) for t in texts)
            raise ValueError(
                f"{self.config.path}: {longest} bases make {length} tokens, over its {self.max_tokens}; "
                "shorten the sequences (data.max_length) or raise backbone.max_tokens"
            )
        token_mask = encoding["attention_mask"]
        real, base = attention_mask.bool().cpu().numpy(), is_base.cpu().numpy()
        index = np.stack(
            [
                position_index(spans[r], special[r], token_mask[r].tolist(), real[r], base[r])
                for r in range(len(texts))
            ]
        )
        device = input_ids.device
        inputs = {k: v.to(device) for k, v in encoding.items() if k in ("input_ids", "attention_mask")}
        out = self.model(**inputs)
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        positions = gather_positions(hidden, torch.from_numpy(index).to(device))
        return HFBackboneOutput(positions, attention_mask, inputs["attention_mask"])
