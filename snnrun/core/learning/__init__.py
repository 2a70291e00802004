"""Learning rules; importing this package registers them all in ``RULES``.

Each kind is a :class:`~snnrun.core.models.rule.RuleModel` (on_pre / on_post / on_step
statements as data) registered with :func:`register_rule`; ``kind: equations`` takes a rule
from the config."""

from . import base, equations, reward, stdp  # noqa: F401  (registration)
from .base import RULES, LearningRule, NoRule, RuleParams, register_rule
from .reward import MSTDP, MSTDPET, MSTDPETParams, MSTDPParams
from .stdp import Hebbian, PostPre, PostPreParams, TripletParams, TripletPostPre, WeightDependentPostPre

__all__ = [
    "RULES", "LearningRule", "RuleParams", "NoRule", "register_rule", "PostPre", "PostPreParams",
    "WeightDependentPostPre", "Hebbian", "TripletPostPre", "TripletParams", "MSTDP",
    "MSTDPParams", "MSTDPET", "MSTDPETParams",
]
