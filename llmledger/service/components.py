"""Background components of the service process, started and stopped by the app's lifespan.

A component is anything with `name`, `start()`, `stop()` and `health()`. The push spool is one;
the scheduler (rollups, signals) will be another: register its factory in `REGISTRY` below, the
one place the service learns about background work. Factories receive the `ServiceState` (open
warehouse, settings) and return a component; components start in order and stop in reverse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from llmledger.service.state import ServiceState


class Component(Protocol):
    """A background part of the service process."""

    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def health(self) -> dict[str, Any]: ...


ComponentFactory = Callable[["ServiceState"], Component]

def scheduler(state: ServiceState) -> Component:
    """The job scheduler (rollups, signals, alert delivery, collectors); it opens its own handle on
    the warehouse so jobs never queue behind requests, and runs jobs only while it holds the lease."""
    from llmledger.scheduler import build_scheduler

    return build_scheduler(state.settings)


def key_refresher(state: ServiceState) -> Component:
    """Re-reads the API keys in the background, so requests never read the key table themselves."""
    from llmledger.service.keys import KeyRefresher

    return KeyRefresher(state.keys)


# Extra background components, in start order.
REGISTRY: list[ComponentFactory] = [key_refresher, scheduler]
