"""Resources: where things are, the configuration, the warehouse, the embedding model and the LLM endpoints."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field, PrivateAttr

from loop_assets.config import LoopConfig, load_config
from loop_assets.dedup.embedding import SentenceEncoder
from loop_assets.llm_client import ChatClient
from loop_assets.warehouse import (
    DEFAULT_LOCK_TIMEOUT_SECONDS,
    DUCKLAKE_CATALOG,
    lake_cursor,
    lock_timeout_seconds,
    open_warehouse,
    warehouse_path,
)


class Warehouse(DuckDBResource):
    """Where the loop's tables live: a DuckDB file (`database`, the default) or, with `ducklake_catalog`
    set, a DuckLake (catalog in Postgres, Parquet under its data path) that many runs on many machines
    write at once. The assets' SQL is the same on both.

    A DuckDB file: dagster-duckdb's resource, waiting longer for the file's lock and closing on errors too.
    Another process that has the file open (a user's read-only session, a writer outside the pool)
    blocks every writer: DuckDB locks the file per process. dagster-duckdb retries for about 100 s;
    this waits up to `lock_timeout_seconds` with exponential backoff (logging once whom it waits for),
    then fails the step with `WarehouseLocked` naming the process that holds the lock.
    DuckDBResource.get_connection closes only when the body succeeds; an asset that fails would keep
    the file open for the life of the process and block the next connection.
    """

    lock_timeout_seconds: float = Field(
        default=DEFAULT_LOCK_TIMEOUT_SECONDS,
        ge=0,
        description="How long to wait for another process to let go of the warehouse file (EVAL_LOOP_LOCK_TIMEOUT).",
    )
    ducklake_catalog: str = Field(
        default="",
        description="Empty: the DuckDB file `database`. Else the libpq connection string of the DuckLake catalog "
        f"database ({DUCKLAKE_CATALOG}), e.g. 'dbname=lake host=pg.internal user=loop'; password from PGPASSWORD.",
    )

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self.ducklake_catalog:
            # one attachment per process, a cursor per use; the data path is the catalog's own (`lake init`)
            con = lake_cursor(self.ducklake_catalog)
        else:
            con = open_warehouse(
                self.database,
                timeout_seconds=self.lock_timeout_seconds,
                config={"custom_user_agent": "dagster", **self.connection_config},
                on_wait=dg.get_dagster_logger().warning,
            )
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

    `model` and `backend` empty mean the configuration file's embedding.model and embedding.backend.
    """

    model: str = ""
    batch_size: int = 0
    device: str = "cpu"
    backend: str = ""
    _encoder: SentenceEncoder | None = PrivateAttr(default=None)

    def encoder(self, config: LoopConfig) -> SentenceEncoder:
        if self._encoder is None:
            self._encoder = SentenceEncoder(
                model=self.model or config.embedding.model,
                batch_size=self.batch_size or config.embedding.batch_size,
                device=self.device,
                backend=self.backend or config.embedding.backend,
            )
        return self._encoder

    def model_id(self, config: LoopConfig) -> str:
        """The embedding cache key (model and resolved backend); the encoder loads its model only to embed."""
        return self.encoder(config).model_id


class LlmEndpoints(dg.ConfigurableResource):
    """The LLM judge and the model under test: OpenAI-compatible servers that the configuration's `judge:`
    and `model_endpoint:` sections describe (keys only from the environment variables they name).

    A base URL set here replaces the file's (a deployment's gateway, a test's local server); empty keeps it.
    Without a section in the file there is no endpoint, whatever is set here.
    """

    judge_base_url: str = ""
    model_base_url: str = ""

    def applied(self, config: LoopConfig) -> LoopConfig:
        """`config` with these endpoints: what every step that calls an endpoint reads."""
        update = {}
        if config.judge is not None and self.judge_base_url:
            update["judge"] = config.judge.model_copy(update={"base_url": self.judge_base_url})
        if config.model_endpoint is not None and self.model_base_url:
            update["model_endpoint"] = config.model_endpoint.model_copy(update={"base_url": self.model_base_url})
        return config.model_copy(update=update) if update else config

    def judge_client(self, config: LoopConfig) -> ChatClient | None:
        return ChatClient.from_config(self.applied(config).judge)

    def model_client(self, config: LoopConfig) -> ChatClient | None:
        return ChatClient.from_config(self.applied(config).model_endpoint)


def default_resources() -> dict[str, object]:
    """Resources from the environment: EVAL_LOOP_WAREHOUSE, EVAL_LOOP_INCOMING, EVAL_LOOP_CONFIG,
    EVAL_LOOP_LOCK_TIMEOUT, and EVAL_LOOP_DUCKLAKE_CATALOG (set: a DuckLake warehouse instead of the file)."""
    return {
        "settings": LoopSettings(
            incoming_dir=os.environ.get("EVAL_LOOP_INCOMING", "data/incoming"),
            config_path=os.environ.get("EVAL_LOOP_CONFIG") or None,
        ),
        "warehouse": Warehouse(
            database=warehouse_path(),
            lock_timeout_seconds=lock_timeout_seconds(),
            ducklake_catalog=os.environ.get(DUCKLAKE_CATALOG, ""),
        ),
        "embedder": Embedder(),
        "endpoints": LlmEndpoints(),
    }
