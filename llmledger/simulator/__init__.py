"""Deterministic, vectorised simulator of multi-provider LLM traffic with known incidents.

Public API: `SimulationConfig`, `iter_days` (one `DayBatch` of canonical calls and tool runs per
UTC day), `simulate` (everything in memory), `ground_truth` (incidents, opportunities, baseline
bounds) and `write_simulation` (calls.jsonl, tool_runs.jsonl, ground_truth.json, streamed by day).
"""

from llmledger.simulator.config import INCIDENT_NAMES, SimulationConfig
from llmledger.simulator.io import write_simulation
from llmledger.simulator.simulation import DayBatch, Simulation, ground_truth, iter_days, simulate
from llmledger.simulator.truth import GroundTruth, IncidentTruth, OpportunityTruth

__all__ = [
    "INCIDENT_NAMES",
    "DayBatch",
    "GroundTruth",
    "IncidentTruth",
    "OpportunityTruth",
    "Simulation",
    "SimulationConfig",
    "ground_truth",
    "iter_days",
    "simulate",
    "write_simulation",
]
