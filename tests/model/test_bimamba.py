"""BiMamba: weight tying, direction symmetry, padding handling of the Mamba mixer."""

from __future__ import annotations

import pytest
import torch

from plantbimoe import BiMamba, Mamba, count_parameters

D = 16
KW = dict(d_state=4, d_conv=4, expand=2)


def _per_direction(m: Mamba) -> int:
    return sum(p.numel() for n, p in m.named_parameters() if not n.startswith(("in_proj", "out_proj")))


def test_tied_projections_are_the_same_parameters() -> None:
    bi = BiMamba(D, weight_tie=True, **KW)
    assert bi.mamba_rev.in_proj.weight is bi.mamba_fwd.in_proj.weight
    assert bi.mamba_rev.out_proj.weight is bi.mamba_fwd.out_proj.weight
    for name in ("conv1d.weight", "x_proj.weight", "dt_proj.weight", "A_log", "D"):
        assert bi.mamba_rev.get_parameter(name) is not bi.mamba_fwd.get_parameter(name)
    keys = bi.state_dict().keys()
    assert {"mamba_fwd.in_proj.weight", "mamba_rev.in_proj.weight", "mamba_rev.out_proj.weight"} <= keys
    single = Mamba(D, **KW)
    shared = single.in_proj.weight.numel() + single.out_proj.weight.numel()
    assert count_parameters(bi)[0] == shared + 2 * _per_direction(single)
    untied = BiMamba(D, weight_tie=False, **KW)
    assert count_parameters(untied)[0] == 2 * sum(p.numel() for p in single.parameters())


def _swapped(bi: BiMamba) -> BiMamba:
    other = BiMamba(D, strategy=bi.strategy, weight_tie=True, **KW)
    sd = {}
    for k, v in bi.state_dict().items():
        sd[k.replace("mamba_fwd", "@").replace("mamba_rev", "mamba_fwd").replace("@", "mamba_rev")] = v
    other.load_state_dict(sd)
    return other


@pytest.mark.parametrize("strategy", ["add", "ew_multiply"])
def test_flipped_input_equals_flipped_output_of_swapped_model(strategy: str) -> None:
    torch.manual_seed(0)
    bi = BiMamba(D, strategy=strategy, **KW)
    x = torch.randn(2, 24, D)
    with torch.no_grad():
        left = bi(x.flip(1))
        right = _swapped(bi)(x).flip(1)
    assert torch.allclose(left, right, atol=1e-6)
    assert not torch.allclose(left, bi(x).flip(1), atol=1e-3)  # the directions really differ


def test_mamba_masked_positions_never_reach_real_ones() -> None:
    """Any masked position (here a hole in the middle) is invisible to the real positions."""
    torch.manual_seed(0)
    m = Mamba(D, **KW)
    x = torch.randn(1, 20, D)
    mask = torch.ones(1, 20, dtype=torch.bool)
    mask[0, 8:11] = False
    noisy = x.clone()
    noisy[0, 8:11] = 100 * torch.randn(3, D)
    with torch.no_grad():
        a, b = m(x, mask), m(noisy, mask)
    assert torch.allclose(a[mask], b[mask], atol=1e-6)
    assert torch.allclose(m(x, torch.ones_like(mask)), m(x), atol=1e-6)
