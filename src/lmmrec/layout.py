"""What lmmrec's two kinds of folder hold: the prepared dataset and the motivation artifact.

Every reader and writer takes file names, columns and the manifest's name from here, so each
folder is described once. Plain strings only: importing this module costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

MANIFEST = "manifest.json"  # in both folders: what the folder holds, as JSON
FINGERPRINT = "interactions_fingerprint"  # manifest key in both: what data it belongs to


@dataclass(frozen=True)
class DatasetLayout:
    """A prepared dataset folder (:mod:`lmmrec.data.dataset`)."""

    interactions: str = "interactions.parquet"
    reviews: str = "reviews.parquet"
    users: str = "users.parquet"
    items: str = "items.parquet"
    manifest: str = MANIFEST
    noise_pairs: str = "noise_pairs.parquet"  # noised copies only: the injected pairs
    interaction_columns: tuple[str, ...] = ("user", "item", "rating", "timestamp", "split")
    required_interaction_columns: tuple[str, ...] = ("user", "item", "split")
    review_columns: tuple[str, ...] = ("user", "item", "title", "text")

    @property
    def tables(self) -> dict[str, str]:
        """Table name -> file, every one of which a prepared folder must have."""
        return {"interactions": self.interactions, "reviews": self.reviews,
                "users": self.users, "items": self.items}


@dataclass(frozen=True)
class ArtifactLayout:
    """A motivation artifact folder (:mod:`lmmrec.text.artifact`)."""

    format: str = "lmmrec-motivations/1"  # the manifest's "format"
    reviews: str = "reviews.parquet"
    items: str = "items.parquet"  # optional: item offers (`extract --items`)
    phrases: str = "phrases.parquet"  # after `lmmrec embed`: distinct phrases, one column
    embeddings: str = "embeddings.npy"  # after `lmmrec embed`: row i <-> phrases row i
    manifest: str = MANIFEST
    phrase_text: str = "text"  # the one column of phrases.parquet
    review_columns: tuple[str, ...] = (
        "input_hash", "user_id", "item_id", "status", "why", "pos", "neg", "attr",
        "prompt_tokens", "output_tokens", "cached_tokens", "latency_s", "attempts", "error")
    item_columns: tuple[str, ...] = (
        "input_hash", "item_id", "status", "what", "attr", "serves", "prompt_tokens",
        "output_tokens", "cached_tokens", "latency_s", "attempts", "error")
    required_review_columns: tuple[str, ...] = ("user_id", "item_id", "status", "pos", "neg",
                                                "attr")
    required_item_columns: tuple[str, ...] = ("item_id", "status", "attr", "serves")
    review_phrases: tuple[str, ...] = ("pos", "neg", "attr")  # lists of phrases, embedded
    item_phrases: tuple[str, ...] = ("attr", "serves")

    @property
    def data_files(self) -> tuple[str, ...]:
        """What training reads (the artifact's fingerprint covers these)."""
        return (self.reviews, self.items, self.phrases, self.embeddings)


DATASET = DatasetLayout()
ARTIFACT = ArtifactLayout()
