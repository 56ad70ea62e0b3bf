"""Simulators of theories: physics and detector, with exact likelihoods where they exist."""

from activesci.simulators.base import SimulatorBase
from activesci.simulators.detector import AngularDetector
from activesci.simulators.gaussian import GaussianSimulator
from activesci.simulators.location import LocationFindingSimulator
from activesci.simulators.weinberg import WeinbergSimulator

__all__ = [
    "AngularDetector",
    "GaussianSimulator",
    "LocationFindingSimulator",
    "SimulatorBase",
    "WeinbergSimulator",
]
