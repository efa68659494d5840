"""FSDP2 sharding of the model (`plantbimoe.fsdp.fully_shard_blocks`), in one gloo process.

On a GPU, the root unit (embeddings, final norm, tied LM head) freed after the forward made the
first backward op read released memory (an illegal address in the final norm's backward, seen on
an H200). The roots now keep their gathered weights until the backward; the blocks follow
``reshard_after_forward``. Gradients must equal the unsharded model's either way."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.tensor import DTensor

from plantbimoe import PlantBiMoEForMaskedLM
from plantbimoe.config import PlantBiMoEConfig
from plantbimoe.fsdp import fully_shard_blocks

PRESET = Path(__file__).resolve().parents[2] / "src" / "plantbimoe" / "presets" / "tiny.json"


@pytest.fixture
def process_group(tmp_path: Path) -> Iterator[None]:
    if dist.is_initialized():
        pytest.skip("a process group is already initialised in this process")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def loss_of(model: PlantBiMoEForMaskedLM, ids: torch.Tensor) -> torch.Tensor:
    out = model(ids)
    return out.logits.log_softmax(-1)[..., 7:11].sum() + out.aux_loss


def full(t: torch.Tensor) -> torch.Tensor:
    return t.full_tensor() if isinstance(t, DTensor) else t


@pytest.mark.parametrize("reshard_blocks", [True, False])
def test_sharded_gradients_equal_the_unsharded_model(process_group: None, reshard_blocks: bool) -> None:
    config = PlantBiMoEConfig(**json.loads(PRESET.read_text()))
    torch.manual_seed(0)
    plain = PlantBiMoEForMaskedLM(config)
    sharded = PlantBiMoEForMaskedLM(config)
    sharded.load_state_dict(plain.state_dict())
    fully_shard_blocks([sharded], init_device_mesh("cpu", (1,)), reshard_after_forward=reshard_blocks)
    ids = torch.randint(7, 11, (2, 48), generator=torch.Generator().manual_seed(1))

    loss = loss_of(sharded, ids)
    # between forward and backward: the root's weights stay gathered (plain tensors), the blocks'
    # are resharded (DTensors) exactly when asked
    assert not isinstance(sharded.backbone.norm_f.weight, DTensor)
    assert not isinstance(sharded.backbone.embeddings.weight, DTensor)
    assert isinstance(sharded.backbone.layers[0].mixer_norm.weight, DTensor) is reshard_blocks
    loss.backward()
    loss_of(plain, ids).backward()

    grads = dict(plain.named_parameters())
    assert len(grads) > 20
    for name, param in sharded.named_parameters():
        torch.testing.assert_close(full(param.grad), grads[name].grad, rtol=1e-6, atol=1e-6, msg=name)
