"""Window logic: held-out splits, N filter, random and tiled windows, reverse complement."""

import numpy as np
import pytest

from datamodules.windows import (
    Region,
    TrainWindowSampler,
    WindowRef,
    parse_region,
    split_regions,
    tile_windows,
    window_arrays,
)
from plantbimoe.tokenizer import N_ID, add_special_tokens, encode, reverse_complement

from .helpers import contig, random_sequence


@pytest.fixture
def genome():
    return [contig("sp1", "c1", random_sequence(3000, 1), "sp1.fa"),
            contig("sp1", "c2", random_sequence(2000, 2), "sp1.fa"),
            contig("sp2", "x", random_sequence(9000, 3), "sp2.fa.gz")]


def test_default_split_holds_out_the_tail_of_each_assemblys_last_contig(genome):
    splits = split_regions(genome, val_fraction=0.1, test_fraction=0.05)
    assert splits["val"] == [Region(1, 1700, 1900), Region(2, 7650, 8550)]
    assert splits["test"] == [Region(1, 1900, 2000), Region(2, 8550, 9000)]
    assert splits["train"] == [Region(0, 0, 3000), Region(1, 0, 1700), Region(2, 0, 7650)]


def test_named_regions_override_the_default(genome):
    splits = split_regions(genome, val_region={"sp1": "c1:1,001-2000"}, test_region={"sp1": "c2"},
                           val_fraction=0.1, test_fraction=0.1)
    assert splits["val"][0] == Region(0, 1000, 2000) and splits["test"][0] == Region(1, 0, 2000)
    assert Region(0, 0, 1000) in splits["train"] and Region(0, 2000, 3000) in splits["train"]
    assert not any(r.contig == 1 for r in splits["train"])
    assert parse_region("lcl|a:b") == ("lcl|a:b", None, None)
    with pytest.raises(ValueError, match=r"no contig 'nope'; its contigs are \['c1', 'c2'\]"):
        split_regions(genome, val_region={"sp1": "nope"})
    with pytest.raises(ValueError, match="overlap"):
        split_regions(genome, val_region={"sp2": "x:8001-9000"}, test_fraction=0.05)
    with pytest.raises(ValueError, match="unknown assemblies"):
        split_regions(genome, val_region={"sp9": "c1"})


def test_validation_tiling_is_deterministic_and_filters_n_exactly():
    # four 100-bp tiles with 0, 2, 3 and 100 N; limit 2 %
    tiles = ["A" * 100, "N" * 2 + "A" * 98, "A" * 50 + "N" * 3 + "A" * 47, "N" * 100]
    genome = [contig("sp", "c", "".join(tiles) + "ACG")]
    refs, dropped = tile_windows(genome, [Region(0, 0, 403)], 100, max_n_fraction=0.02)
    assert [r.start for r in refs] == [0, 100] and dropped == 2
    assert tile_windows(genome, [Region(0, 0, 403)], 100, 0.02) == (refs, dropped)
    assert tile_windows(genome, [Region(0, 0, 403)], 100, 0.03)[1] == 1
    assert len(tile_windows(genome, [Region(0, 0, 403)], 10, 1.0, max_windows=5)[0]) == 5


def test_training_windows_avoid_held_out_regions_and_excess_n(genome):
    sequence = list(random_sequence(9000, 4))
    sequence[4000:4100] = "N" * 100  # a gap that most windows overlapping it must skip
    genome[2] = contig("sp2", "x", "".join(sequence))
    splits = split_regions(genome, val_fraction=0.1, test_fraction=0.1)
    sampler = TrainWindowSampler(genome, splits["train"], 64, max_n_fraction=0.05)
    rng = np.random.default_rng(0)
    held = splits["val"] + splits["test"]
    for _ in range(3000):
        ref = sampler.draw(rng)
        end = ref.start + 64
        assert not any(r.contig == ref.contig and ref.start < r.end and r.start < end for r in held)
        assert np.count_nonzero(genome[ref.contig].tokens[ref.start : ref.start + 64] == N_ID) <= 3


def test_reverse_complement_probability_and_consistency(genome):
    sampler = TrainWindowSampler(genome, [Region(0, 0, 3000)] + [Region(2, 0, 9000)], 50, rc_prob=0.3)
    rng = np.random.default_rng(1)
    draws = [sampler.draw(rng) for _ in range(4000)]
    share = np.mean([d.reverse for d in draws])
    assert abs(share - 0.3) < 4 * np.sqrt(0.3 * 0.7 / 4000)
    forward = WindowRef(0, 100, False)
    ids, softmask = window_arrays(genome, forward, 50, add_special=False)
    rc_ids, rc_softmask = window_arrays(genome, WindowRef(0, 100, True), 50, add_special=False)
    assert np.array_equal(rc_ids, reverse_complement(ids)) and np.array_equal(rc_softmask, softmask[::-1])
    with_specials, mask = window_arrays(genome, WindowRef(0, 100, True), 50)
    assert np.array_equal(with_specials, add_special_tokens(rc_ids)) and not mask[[0, -1]].any()


def test_species_sampling_uniform_or_by_bp(genome):
    regions = [Region(0, 0, 1000), Region(2, 0, 9000)]
    rng = np.random.default_rng(2)
    for mode, expected in (("uniform", 0.5), ("bp", 951 / (951 + 8951))):
        sampler = TrainWindowSampler(genome, regions, 50, species_sampling=mode)
        share = np.mean([sampler.draw(rng).contig == 0 for _ in range(3000)])
        assert abs(share - expected) < 0.04


def test_window_longer_than_every_contig_names_file_and_longest_contig(genome):
    with pytest.raises(ValueError, match=r"assembly 'sp1' \(sp1\.fa\): its longest contig has 3000 bp"):
        TrainWindowSampler(genome, split_regions(genome)["train"], 5000)


def test_mostly_n_training_region_raises_instead_of_looping():
    genome = [contig("sp", "c", "N" * 500 + "A" * 10)]
    sampler = TrainWindowSampler(genome, [Region(0, 0, 510)], 100, max_tries=20)
    with pytest.raises(RuntimeError, match="mostly N"):
        sampler.draw(np.random.default_rng(0))
    assert encode("N").tolist() == [N_ID]
