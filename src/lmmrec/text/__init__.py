"""Text side: the motivation artifact, phrase embeddings and per-split profiles."""
