"""Synthetic cohort simulator with ground truth and vendor-format emitters."""

from connectors.simulator.cohort import SimPatient, SimulationResult, simulate

__all__ = ["SimPatient", "SimulationResult", "simulate"]
