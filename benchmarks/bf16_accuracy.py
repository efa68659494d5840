"""How far bf16 autocast moves the model's outputs from float32 on this machine (CPU by default).

Two models, each run in float32 and under bf16 autocast on the same inputs:

* ``golden``: the small model of ``tests/data/reference/golden_small`` on its fixed inputs, beside
  the original implementation's float32 logits;
* ``arabidopsis-tiny``: the shipped pretrained model on real A. thaliana windows (TAIR10 chr1 of
  the embedded data, the first ``--windows`` windows of ``--length`` bp without N from 10 Mb on).

Reported per model: max abs and max relative (to the largest |logit|) logit error, the max abs
error of the per-position log-probabilities of the four bases (what `plantbimoe vep` differences),
the error of a ref/alt log-likelihood ratio at every position (``llr``: log p(alt) - log p(ref),
alt = each other base), the agreement of the predicted base, and the cosine similarity of mean
embeddings (what `plantbimoe embed` writes).

    python benchmarks/bf16_accuracy.py             # prints, writes benchmarks/results/bf16_accuracy.json
    python benchmarks/bf16_accuracy.py --windows 4 --length 512 --out acc.json
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import machine_info, write_json

from plantbimoe.embedded import embedded_assemblies
from plantbimoe.fasta import read_fasta
from plantbimoe.pretrained import load_pretrained
from plantbimoe.tokenizer import NUCLEOTIDE_IDS, encode

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "reference" / "golden_small"
BASE_IDS = list(NUCLEOTIDE_IDS)  # A, C, G, T


def real_windows(n: int, length: int, start: int = 10_000_000) -> torch.Tensor:
    """`n` windows of `length` bp without N from the first TAIR10 record, from `start` on."""
    record = next(iter(read_fasta(embedded_assemblies()["A_thaliana_TAIR10"])))
    seq = record.sequence.upper()
    rows, pos = [], start
    while len(rows) < n and pos + length <= len(seq):
        window = seq[pos : pos + length]
        if b"N" not in window:
            rows.append(torch.from_numpy(encode(window).astype(np.int64)))
        pos += length
    return torch.stack(rows)


def outputs(model: Any, ids: torch.Tensor, bf16: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (float32) and mean-pooled final hidden states of `ids`."""
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = model(ids)
    return out.logits.float(), out.backbone.last_hidden_state.float().mean(dim=1)


def compare(model: Any, ids: torch.Tensor) -> dict[str, Any]:
    """bf16 against float32 on `ids` (see the module docstring)."""
    ref_logits, ref_emb = outputs(model, ids, bf16=False)
    logits, emb = outputs(model, ids, bf16=True)
    scale = ref_logits.abs().max()
    lp_ref = ref_logits[..., BASE_IDS].log_softmax(-1)
    lp = logits[..., BASE_IDS].log_softmax(-1)
    refs = ids.clamp(min=BASE_IDS[0], max=BASE_IDS[-1]) - BASE_IDS[0]  # the observed base (0-3)
    llr_ref = lp_ref - lp_ref.gather(-1, refs[..., None])
    llr = lp - lp.gather(-1, refs[..., None])
    return {
        "tokens": int(ids.numel()),
        "logits_max_abs": float((logits - ref_logits).abs().max()),
        "logits_max_rel": float((logits - ref_logits).abs().max() / scale),
        "logprob_max_abs": float((lp - lp_ref).abs().max()),
        "llr_max_abs": float((llr - llr_ref).abs().max()),
        "llr_mean_abs": float((llr - llr_ref).abs().mean()),
        "argmax_agreement": float((lp.argmax(-1) == lp_ref.argmax(-1)).float().mean()),
        "embedding_cosine_min": float(torch.nn.functional.cosine_similarity(emb, ref_emb, dim=-1).min()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--windows", type=int, default=16)
    ap.add_argument("--length", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/results/bf16_accuracy.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    golden = load_pretrained(GOLDEN).eval()
    golden_ids = torch.from_numpy(np.load(GOLDEN / "inputs.npy"))
    results = {"golden": compare(golden, golden_ids)}
    expected = torch.from_numpy(np.load(GOLDEN / "logits.npy"))
    fp32_logits = outputs(golden, golden_ids, bf16=False)[0]
    results["golden"]["fp32_vs_original_max_abs"] = float((fp32_logits - expected).abs().max())
    tiny = load_pretrained("arabidopsis-tiny").eval()
    results["arabidopsis-tiny"] = compare(tiny, real_windows(args.windows, args.length))
    for name, r in results.items():
        print(name, ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()))
    write_json(Path(args.out), {"benchmark": "bf16_accuracy", "machine": machine_info(args.threads),
                                "args": vars(args), "results": results})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
