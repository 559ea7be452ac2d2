"""Numbered ClickHouse migrations (`NNNN_description.sql`), applied in order by `warehouse.migrate`.

Forward-only and idempotent (`IF NOT EXISTS`); `max_migration.txt` names the newest so that two
branches adding a migration conflict in git instead of silently sharing a number.
"""
