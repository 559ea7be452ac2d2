"""Writes provider usage and cost buckets so that a re-fetched bucket replaces the stored one.

Per page: the rows go in under a new `fetch_id`, then one manifest row per covered bucket goes
into `provider_bucket_fetches`; the `*_live` views read only each bucket's latest fetch of the
same project (migrations 0020, 0090), so a project's fetch never replaces another project's bill. Model names are resolved against the catalogue like calls', so reconciliation
joins them. Rows and manifest entries superseded during a run are deleted once at its end
(`close`), as housekeeping only: readers never depend on it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import polars as pl

from ingest.catalog import Catalog
from ingest.collected import Batch, Output
from ingest.writer import conform_to
from warehouse.client import Warehouse

_TABLES = {Output.PROVIDER_USAGE: "provider_usage", Output.PROVIDER_COSTS: "provider_costs"}


class ProviderBucketWriter:
    """Replacing writes of provider export pages."""

    def __init__(self, wh: Warehouse, catalog: Catalog) -> None:
        self.wh = wh
        self.catalog = catalog
        self.columns = {output: wh.table_columns(table) for output, table in _TABLES.items()}
        self._superseded: dict[tuple[str, str, str], list[datetime]] = {}

    def write(self, batch: Batch, project: str) -> int:
        """Store one page of `project`'s export; returns the rows written. Buckets of the page without
        rows become empty (for this project only)."""
        assert batch.frame is not None and batch.buckets is not None and batch.stream
        table = _TABLES[batch.output]
        fetch_id = uuid.uuid4().hex
        fetched_at = datetime.now(UTC)
        frame = self._resolve_models(batch.frame).with_columns(
            pl.lit(project).alias("project"),
            pl.lit(fetch_id).alias("fetch_id"),
            pl.lit(fetched_at).cast(pl.Datetime("ms", "UTC")).alias("fetched_at"),
        )
        written = self.wh.insert_arrow(table, conform_to(frame, self.columns[batch.output]), tag=f"collect:{table}")
        counts = frame.group_by("bucket_start").len("rows")
        manifest = (
            batch.buckets.unique("bucket_start")
            .join(counts, on="bucket_start", how="left")
            .with_columns(
                pl.lit(project).alias("project"),
                pl.lit(batch.stream).alias("stream"),
                pl.lit(fetch_id).alias("fetch_id"),
                pl.lit(fetched_at).cast(pl.Datetime("ms", "UTC")).alias("fetched_at"),
                pl.col("rows").fill_null(0).cast(pl.UInt64),
            )
        )
        # The manifest insert is the commit point: from here readers see this fetch.
        self.wh.insert_arrow("provider_bucket_fetches", manifest.select(
            "project", "stream", "bucket_start", "bucket_end", "fetch_id", "fetched_at", "rows"),
            tag=f"collect:{table}:manifest")
        starts = manifest["bucket_start"].to_list()
        if self.wh.scalar(
            "SELECT count() FROM provider_bucket_fetches WHERE project = {p:String} AND stream = {s:String} "
            "AND bucket_start IN {b:Array(DateTime64(3, 'UTC'))} AND fetch_id != {f:String}",
            {"p": project, "s": batch.stream, "b": starts, "f": fetch_id}, tag=f"collect:{table}:manifest",
        ):
            self._superseded.setdefault((table, project, batch.stream), []).extend(starts)
        return written

    def close(self) -> None:
        """Delete what this writer's fetches superseded (one lightweight DELETE per stream)."""
        for (table, project, stream), starts in self._superseded.items():
            self._drop_superseded(table, project, stream, sorted(set(starts)))
        self._superseded.clear()

    def _resolve_models(self, frame: pl.DataFrame) -> pl.DataFrame:
        named = frame.filter(pl.col("model_raw").is_not_null() & (pl.col("model_raw") != ""))
        if named.height == 0:
            return frame.with_columns(pl.lit("").alias("model"), pl.col("model_raw").fill_null(""))
        pairs = named.select("provider", pl.col("model_raw").alias("model"))
        resolved = self.catalog.resolve_frame(pairs).select(
            "provider", pl.col("model").alias("model_raw"), pl.col("model_id").alias("model"))
        return frame.join(resolved, on=["provider", "model_raw"], how="left", maintain_order="left").with_columns(
            pl.col("model").fill_null(""), pl.col("model_raw").fill_null(""))

    def _drop_superseded(self, table: str, project: str, stream: str, starts: list[datetime]) -> None:
        """Delete every fetch of these buckets of `project` but the latest (rows first, then manifest
        entries); other projects' fetches of the same stream are not touched."""
        params = {"p": project, "s": stream, "b": starts}
        latest = ("SELECT stream, bucket_start, argMax(fetch_id, (fetched_at, fetch_id)) FROM provider_bucket_fetches "
                  "WHERE project = {p:String} AND stream = {s:String} AND bucket_start IN {b:Array(DateTime64(3, 'UTC'))} "
                  "GROUP BY stream, bucket_start")
        where = ("project = {p:String} AND stream = {s:String} AND bucket_start IN {b:Array(DateTime64(3, 'UTC'))} "
                 f"AND (stream, bucket_start, fetch_id) NOT IN ({latest})")
        self.wh.command(f"DELETE FROM {table} WHERE {where}", params, tag=f"collect:{table}:gc")
        self.wh.command(f"DELETE FROM provider_bucket_fetches WHERE {where}", params, tag=f"collect:{table}:gc")
