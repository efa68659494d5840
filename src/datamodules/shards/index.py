"""The shard index (index.json) and where shards are read from: local paths or URLs.

A location is a local folder, an fsspec URL (`s3://bucket/corpus`, `gs://...`, `https://...`,
`memory://...`; the matching fsspec backend must be installed), or a `pipe:` command template
in which `{path}` stands for a file of the corpus, e.g.
`pipe:aws s3 cp s3://bucket/corpus/{path} -`. Locations with `{path}` anywhere are templates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import webdataset as wds

from datamodules.shards.builder import FORMAT, INDEX_NAME

SPLIT_NAMES = ("train", "val", "test")


def resolve(location: str, relative: str) -> str:
    """The URL or path of `relative` (e.g. 'train/x-00000.tar') inside a corpus location."""
    if "{path}" in location:
        return location.replace("{path}", relative)
    if location.startswith("pipe:"):
        raise ValueError(f"pipe: location {location!r} needs a '{{path}}' placeholder for the file name")
    if "://" in location:
        return location.rstrip("/") + "/" + relative
    return str(Path(location) / relative)


def open_url(url: str) -> IO[bytes]:
    """A binary stream: `pipe:` commands and local files via webdataset's gopen, URLs via fsspec."""
    if url.startswith("pipe:") or "://" not in url or url.startswith("file://"):
        return wds.gopen(url, "rb")
    import fsspec  # lazy: only remote corpora need it

    return fsspec.open(url, "rb").open()


@dataclass(frozen=True)
class ShardRef:
    """One shard of a split: where it is, how many windows it holds, and their species."""

    url: str
    windows: int
    species: str


class ShardIndex:
    """A read index.json plus the location its shards are read from."""

    def __init__(self, data: dict[str, Any], location: str) -> None:
        if data.get("format") != FORMAT:
            raise ValueError(f"{resolve(location, INDEX_NAME)}: not a shard index of format {FORMAT} "
                             f"(found {data.get('format')!r})")
        self.data, self.location = data, location

    @classmethod
    def load(cls, location: str) -> ShardIndex:
        url = resolve(location, INDEX_NAME)
        try:
            with open_url(url) as stream:
                data = json.loads(stream.read())
        except FileNotFoundError as err:
            raise FileNotFoundError(f"no shard index at {url}: build the shards first "
                                    "(`plantbimoe-shards build MANIFEST OUT` or `make shards`)") from err
        return cls(data, location)

    @property
    def parameters(self) -> dict[str, Any]:
        return self.data["parameters"]

    @property
    def window_length(self) -> int:
        return int(self.parameters["window_length"])

    @property
    def species(self) -> list[str]:
        return list(self.data["species"])

    def shards(self, split: str) -> list[ShardRef]:
        if split not in SPLIT_NAMES:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLIT_NAMES}")
        return [ShardRef(resolve(self.location, s["path"]), int(s["windows"]), s["species"])
                for s in self.data["splits"][split]["shards"]]

    def windows(self, split: str) -> int:
        return int(self.data["splits"][split]["windows"])

    def species_bases(self, split: str = "train") -> dict[str, int]:
        """Bases of kept windows per species in a split (for sampling weights)."""
        out = {}
        for name, record in self.data["species"].items():
            stats = record["splits"].get(split)
            out[name] = int(stats["window_bases"]) if stats else 0
        return out

    def manifest_weights(self) -> dict[str, float]:
        return {name: float(record.get("weight", 1.0)) for name, record in self.data["species"].items()}

    def unigram_frequencies(self, split: str = "train") -> np.ndarray:
        """Frequencies of A, C, G, T (float64, sum 1) over the kept windows of a split."""
        counts = np.zeros(4, dtype=np.float64)
        for record in self.data["species"].values():
            stats = record["splits"].get(split)
            if stats:
                counts += np.asarray(stats["base_counts"][:4], dtype=np.float64)
        if counts.sum() == 0:
            raise ValueError(f"split {split!r} of {self.location} has no window")
        return counts / counts.sum()
