"""Learning rules; importing this package registers them all in ``RULES``."""

from . import base, reward, stdp  # noqa: F401  (registration)
from .base import RULES, LearningRule, NoRule, RuleParams
from .reward import MSTDP, MSTDPET, MSTDPETParams, MSTDPParams
from .stdp import Hebbian, PostPre, PostPreParams, TripletParams, TripletPostPre, WeightDependentPostPre

__all__ = [
    "RULES", "LearningRule", "RuleParams", "NoRule", "PostPre", "PostPreParams",
    "WeightDependentPostPre", "Hebbian", "TripletPostPre", "TripletParams", "MSTDP",
    "MSTDPParams", "MSTDPET", "MSTDPETParams",
]
