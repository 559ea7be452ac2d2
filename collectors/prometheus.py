"""Prometheus text exposition → a long Polars frame, and the shared scrape loop.

Parsing is `prometheus_client`'s `text_string_to_metric_families` (the reference parser); its
samples are copied into columns once (sample name, value and the label keys asked for), and
everything after that is column-wise. `scrape_targets` GETs each configured target and maps it;
a failing target does not stop the others and is reported at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from urllib.parse import urlparse

import polars as pl
from prometheus_client.parser import text_string_to_metric_families

from collectors.base import Batch
from collectors.config import ScrapeConfig, ScrapeTarget
from collectors.errors import BadResponse, CollectorError, SourceUnavailable
from collectors.http import ApiClient

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """Now, UTC, to the millisecond (the resolution samples are stored with)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def samples(text: str, labels: Sequence[str], *, keep: Callable[[str], bool] | None = None) -> pl.DataFrame:
    """Columns `name`, `value` and one per label key in `labels` (null when a sample lacks it).

    `keep(family_name)` skips whole families early (DCGM and vLLM expose many we do not store).
    Malformed text raises `BadResponse`.
    """
    names: list[str] = []
    values: list[float] = []
    columns: dict[str, list[str | None]] = {label: [] for label in labels}
    if keep is not None:
        text = _kept_lines(text, keep)
    try:
        for family in text_string_to_metric_families(text):
            if keep is not None and not keep(family.name):
                continue
            for sample in family.samples:
                names.append(sample.name)
                values.append(sample.value)
                for label in labels:
                    columns[label].append(sample.labels.get(label))
    except ValueError as err:
        raise BadResponse(f"not Prometheus text exposition: {err}") from err
    return pl.DataFrame(
        {"name": names, "value": values, **columns},
        schema={"name": pl.String, "value": pl.Float64, **{label: pl.String for label in labels}},
    )


def _kept_lines(text: str, keep: Callable[[str], bool]) -> str:
    """The exposition without the families `keep` rejects: a cheap line filter that spares the
    (pure-Python) parser most of the work on exporters that expose much more than we store."""
    lines = []
    for line in text.splitlines():
        if line.startswith("#"):
            parts = line.split(" ", 3)
            name = parts[2] if len(parts) > 2 and parts[1] in ("HELP", "TYPE") else ""
            if not name:
                continue
        else:
            name = line.split("{", 1)[0].split(" ", 1)[0]
        if name and keep(name):
            lines.append(line)
    return "\n".join(lines) + "\n"


def target_node(target: ScrapeTarget) -> str:
    """The configured node name, else the target URL's host:port."""
    if target.node:
        return target.node
    parts = urlparse(target.url)
    return parts.netloc or target.url


def scrape_targets(
    config: ScrapeConfig, source: str, clock: Clock, parse: Callable[[str, ScrapeTarget, datetime], list[Batch]]
) -> Iterator[Batch]:
    """Scrape each target once and yield its batches; failed targets are raised together at the end."""
    failures: list[str] = []
    with ApiClient(base_url="http://unused.invalid", headers={"Accept": "text/plain"}, config=config.http,
                   source=source) as client:
        for target in config.targets:
            try:
                text = client.get_text(target.url)
                batches = parse(text, target, clock())
            except CollectorError as err:
                failures.append(f"{target.url}: {err}")
                continue
            yield from batches
    if failures:
        raise SourceUnavailable(f"{source}: {len(failures)} of {len(config.targets)} targets failed: "
                                + "; ".join(failures))
