"""Shared fixtures: the real embedding model (loaded once per session) and small frames built in code."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest

from loop_assets.config import LoopConfig
from loop_assets.dedup.embedding import SentenceEncoder
from loop_assets.devtools.sample_traffic import write_traffic
from loop_assets_tests.loop_runner import DAYS, START, Loop, new_loop


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


@pytest.fixture(scope="session")
def traffic(tmp_path_factory):
    """Three days of generated traffic (150 traces a day), written once per session."""
    out = tmp_path_factory.mktemp("traffic")
    write_traffic(out, days=len(DAYS), per_day=150, seed=11, start=START)
    return out


@pytest.fixture(scope="session")
def in_order(tmp_path_factory, traffic) -> tuple[Loop, list]:
    """The loop run day by day, oldest first, each day a separate Dagster run (as the daily schedule does)."""
    loop = new_loop(tmp_path_factory.mktemp("in_order"), traffic)
    return loop, [loop.run(day) for day in DAYS]


@pytest.fixture
def chat_server():
    """A real OpenAI-compatible chat-completions server on 127.0.0.1 (see chat_server.py), stopped after the test."""
    from loop_assets_tests.chat_server import ChatServer

    server = ChatServer().start()
    try:
        yield server
    finally:
        server.stop()
