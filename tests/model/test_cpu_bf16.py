"""bf16 on CPU: the tiny model under autocast against float32, and a few bf16-mixed training steps."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from plantbimoe import PlantBiMoEConfig, PlantBiMoEForMaskedLM
from plantbimoe import conv as conv_module
from plantbimoe.scan_numba import numba_available
from plantbimoe.tokenizer import MASK_ID

pytestmark = pytest.mark.skipif(not numba_available(), reason="numba is not installed")


def _batch(b: int = 2, length: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(7, 11, (b, length), generator=g)
    masked = torch.rand(ids.shape, generator=g) < 0.15
    return ids.masked_fill(masked, MASK_ID), ids.masked_fill(~masked, -100)


def test_autocast_bf16_logits_within_tolerance_of_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same weights, bf16 autocast vs float32; the conv kernel sees bf16 activations."""
    torch.manual_seed(0)
    model = PlantBiMoEForMaskedLM(PlantBiMoEConfig.preset("tiny")).eval()
    ids, labels = _batch()
    seen: list[torch.dtype] = []
    conv = conv_module.conv1d_silu_numba
    monkeypatch.setattr(conv_module, "conv1d_silu_numba", lambda x, *a: seen.append(x.dtype) or conv(x, *a))
    with torch.no_grad():
        want = model(ids, labels=labels)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = model(ids, labels=labels)
    assert torch.bfloat16 in seen and torch.float32 in seen
    assert got.logits.dtype == torch.float32 and got.loss.dtype == torch.float32
    err = (got.logits - want.logits).abs().max().item()
    assert err <= 0.05 * want.logits.abs().max().item(), err
    assert abs(got.loss.item() - want.loss.item()) < 0.02


class _MLM(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.model = PlantBiMoEForMaskedLM(PlantBiMoEConfig.preset("tiny"))
        self.losses: list[float] = []

    def training_step(self, batch: list[torch.Tensor], _: int) -> torch.Tensor:
        loss = self.model(batch[0], labels=batch[1]).loss
        self.losses.append(loss.item())
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=3e-3)


def test_bf16_mixed_cpu_training_steps(tmp_path) -> None:
    torch.manual_seed(0)
    task = _MLM()
    before = {k: v.clone() for k, v in task.state_dict().items()}
    data = torch.utils.data.TensorDataset(*_batch(b=8, length=48))
    trainer = L.Trainer(
        accelerator="cpu", devices=1, precision="bf16-mixed", max_steps=4, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(task, torch.utils.data.DataLoader(data, batch_size=2))
    assert len(task.losses) == 4 and all(map(torch.isfinite, map(torch.tensor, task.losses)))
    after = task.state_dict()
    assert all(v.dtype == torch.float32 for v in after.values() if v.is_floating_point())
    changed = [k for k, v in after.items() if not torch.equal(v, before[k])]
    assert any("conv1d" in k for k in changed) and any("A_log" in k for k in changed)


def test_router_stays_float32_under_autocast() -> None:
    """Routing is a discrete choice: bf16 router logits would flip near-tied tokens to another
    expert. Under autocast the router's logits equal the float32 ones for the same input."""
    from plantbimoe.moe import SparseMoE

    torch.manual_seed(0)
    moe = SparseMoE(64, 96, num_experts=4, top_k=1)
    hidden = torch.randn(2, 300, 64)
    with torch.no_grad():
        _, ref = moe(hidden)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            _, got = moe(hidden)
    assert got.router_logits.dtype == torch.float32
    torch.testing.assert_close(got.router_logits, ref.router_logits, rtol=0, atol=0)
    assert torch.equal(got.selected_experts, ref.selected_experts)
