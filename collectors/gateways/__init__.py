"""Gateway log imports: files exported from LiteLLM, Helicone, Portkey, OpenRouter, or any
JSONL / CSV / Parquet with a user-supplied mapping, turned into canonical call records.

Each importer reads its source with every field as text (`source`), maps columns to the
canonical record with Polars expressions (`mapping` holds the shared pieces: lenient numbers,
robust JSON decoding, tags, provider token semantics) and hands the ingest pipeline `RawBatch`es
whose unreadable rows are already failures carrying their source line and payload.
"""
