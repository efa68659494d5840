"""Applying a trained model: batching, tiling, embeddings, per-position scores, variant effects."""
