"""MPGB datasets: readers for each format, length-bucketed batches, the datamodule."""

from datamodules.mpgb.datamodule import MPGBDataModule
from datamodules.mpgb.readers import DatasetFormatError, LabeledSequences, read_dataset

__all__ = ["DatasetFormatError", "LabeledSequences", "MPGBDataModule", "read_dataset"]
