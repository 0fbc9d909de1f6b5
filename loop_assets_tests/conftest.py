"""Shared fixtures: the real embedding model (loaded once per session) and small frames built in code."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest

from loop_assets.config import LoopConfig
from loop_assets.dedup.embedding import SentenceEncoder


class CountingEncoder:
    """The real encoder, counting what it is asked to embed."""

    def __init__(self, encoder: SentenceEncoder):
        self.encoder = encoder
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]):
        self.calls.append(list(texts))
        return self.encoder(texts)

    @property
    def texts_embedded(self) -> int:
        return sum(len(c) for c in self.calls)


@pytest.fixture(scope="session")
def real_encoder() -> SentenceEncoder:
    return SentenceEncoder(model="all-MiniLM-L6-v2", batch_size=64)


@pytest.fixture
def counting_encoder(real_encoder: SentenceEncoder) -> CountingEncoder:
    return CountingEncoder(real_encoder)


@pytest.fixture
def config() -> LoopConfig:
    return LoopConfig()
