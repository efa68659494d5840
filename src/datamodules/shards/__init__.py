"""Genome-scale pretraining data: FASTA -> webdataset tar shards -> streamed MLM batches.

manifest.py (species YAML), splits.py (held-out contigs), streaming.py (bounded-memory windows),
writer.py (deterministic tar shards), unit.py + builder.py (resumable parallel build), index.py
(reading index.json from a path or URL), dataset.py (the streaming IterableDataset),
datamodule.py (the LightningDataModule), curriculum.py (sequence-length schedule), cli.py.
"""
