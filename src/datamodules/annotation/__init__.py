"""Benchmark examples derived from a genome annotation (GFF3 + genome FASTA)."""
