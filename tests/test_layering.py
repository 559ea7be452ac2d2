"""The folders are the architecture: collectors → ingest → warehouse → alerts / dashboards, with
`common/` at the bottom and `llmledger/` as the shell that wires them. Checked on the import graph
(grimp reads every import statement, function-level ones included):

- no module of a layer (the router advisor included) imports the shell (`llmledger`), and `common` imports nothing of the project;
- ingest never imports collectors (the collectors feed ingest, not the other way round);
- no import cycle among the project's modules. Imports under `if TYPE_CHECKING:` never run, so the
  cycle check leaves them out; the layer rules count them too.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable

import grimp
import pytest

PACKAGES = ("common", "collectors", "ingest", "warehouse", "alerts", "dashboards", "advisor", "migrations",
            "llmledger")
LAYERS = ("collectors", "ingest", "warehouse", "alerts", "dashboards", "advisor")
PROJECT = frozenset(PACKAGES)

# importer package → packages it must never import
FORBIDDEN: dict[str, frozenset[str]] = {
    **{layer: frozenset({"llmledger"}) for layer in LAYERS},
    "ingest": frozenset({"llmledger", "collectors"}),
    "common": PROJECT - {"common"},
}


def _top(module: str) -> str:
    return module.split(".", 1)[0]


def forbidden_imports(graph: grimp.ImportGraph) -> list[str]:
    """Every import that crosses a layer the wrong way, as `importer:line -> imported`."""
    found = []
    for importer in sorted(graph.modules):
        banned = FORBIDDEN.get(_top(importer), frozenset())
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            if _top(imported) in banned:
                details = graph.get_import_details(importer=importer, imported=imported)
                lines = ",".join(str(d["line_number"]) for d in details)
                found.append(f"{importer}:{lines} -> {imported}")
    return found


def import_cycle(graph: grimp.ImportGraph, modules: Iterable[str]) -> list[str] | None:
    """One import cycle among `modules` (first module repeated at the end), or None."""
    chosen = set(modules)
    edges = {m: {i for i in graph.find_modules_directly_imported_by(m) if i in chosen} for m in chosen}
    try:
        graphlib.TopologicalSorter(edges).prepare()
    except graphlib.CycleError as err:
        return list(reversed(err.args[1]))
    return None


@pytest.fixture(scope="module")
def every_import() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, cache_dir=None)


@pytest.fixture(scope="module")
def runtime_imports() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True, cache_dir=None)


def test_layers_import_downwards_only(every_import: grimp.ImportGraph) -> None:
    """No layer imports the shell, ingest never imports collectors, common imports nothing of ours."""
    assert {_top(m) for m in every_import.modules} == PROJECT
    found = forbidden_imports(every_import)
    assert not found, "imports against the layering:\n" + "\n".join(found)


def test_no_import_cycles(runtime_imports: grimp.ImportGraph) -> None:
    cycle = import_cycle(runtime_imports, runtime_imports.modules)
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_the_checks_catch_what_they_guard_against() -> None:
    """On a small graph with one of each mistake (a layer importing the shell, ingest importing
    collectors, common importing a layer, a circle): each is reported, and nothing once it is gone."""
    mistakes = [("alerts.evaluate", "llmledger.settings"), ("ingest.pipeline", "collectors.base"),
                ("common.links", "warehouse.client"), ("warehouse.client", "warehouse.topology"),
                ("warehouse.topology", "warehouse.migrate"), ("warehouse.migrate", "warehouse.client"),
                ("collectors.base", "ingest.pipeline"), ("llmledger.settings", "alerts.evaluate")]
    graph = grimp.ImportGraph()
    for importer, imported in mistakes:
        graph.add_import(importer=importer, imported=imported, line_number=7, line_contents="import …")
    assert forbidden_imports(graph) == ["alerts.evaluate:7 -> llmledger.settings",
                                        "common.links:7 -> warehouse.client",
                                        "ingest.pipeline:7 -> collectors.base"]
    cycle = import_cycle(graph, graph.modules)
    assert cycle is not None and cycle[0] == cycle[-1] and len(cycle) > 2
    assert all(graph.direct_import_exists(importer=a, imported=b) for a, b in zip(cycle, cycle[1:])), cycle
    graph.remove_import(importer="warehouse.migrate", imported="warehouse.client")
    assert import_cycle(graph, [m for m in graph.modules if m.startswith("warehouse.")]) is None
