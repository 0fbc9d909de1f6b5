"""Resources: where things are, the configuration, the warehouse and the embedding model."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import PrivateAttr

from loop_assets.config import LoopConfig, load_config
from loop_assets.dedup.embedding import SentenceEncoder, model_id
from loop_assets.warehouse import warehouse_path


class Warehouse(DuckDBResource):
    """dagster-duckdb's resource (backoff while another process holds the file), closing on errors too.

    DuckDBResource.get_connection closes only when the body succeeds; an asset that fails would keep
    the file open for the life of the process and block the next connection.
    """

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with super().get_connection() as con:
            try:
                yield con
            finally:
                con.close()


class LoopSettings(dg.ConfigurableResource):
    """Where trace files arrive and which configuration file applies."""

    incoming_dir: str
    config_path: str | None = None

    def config(self) -> LoopConfig:
        return load_config(self.config_path)

    def incoming(self) -> Path:
        return Path(self.incoming_dir)


class Embedder(dg.ConfigurableResource):
    """A sentence-transformers model, loaded once per run and only when a text needs embedding.

    `model` empty means the configuration file's embedding.model.
    """

    model: str = ""
    batch_size: int = 0
    device: str = "cpu"
    _encoder: SentenceEncoder | None = PrivateAttr(default=None)

    def encoder(self, config: LoopConfig) -> SentenceEncoder:
        if self._encoder is None:
            self._encoder = SentenceEncoder(
                model=self.model or config.embedding.model,
                batch_size=self.batch_size or config.embedding.batch_size,
                device=self.device,
            )
        return self._encoder

    def model_id(self, config: LoopConfig) -> str:
        return model_id(self.model or config.embedding.model)


def default_resources() -> dict[str, object]:
    """Resources from the environment: EVAL_LOOP_WAREHOUSE, EVAL_LOOP_INCOMING, EVAL_LOOP_CONFIG."""
    return {
        "settings": LoopSettings(
            incoming_dir=os.environ.get("EVAL_LOOP_INCOMING", "data/incoming"),
            config_path=os.environ.get("EVAL_LOOP_CONFIG") or None,
        ),
        "warehouse": Warehouse(database=warehouse_path()),
        "embedder": Embedder(),
    }
