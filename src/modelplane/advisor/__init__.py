"""The advisor: recommend how to serve a model from its expected traffic.

:mod:`~modelplane.advisor.rules` picks an option the way the seed says; the discrete-event
:mod:`~modelplane.advisor.simulator` (over the platform's own autoscaler, replica choice and
placement) sizes and prices each option with the model's measured
:mod:`~modelplane.advisor.costs`.
"""

from __future__ import annotations

from modelplane.advisor.advise import Advice, OptionReport, Question, advise
from modelplane.advisor.costs import Costs, ServiceTime
from modelplane.advisor.rules import Need, Option, Pattern, Recommendation, recommend
from modelplane.advisor.simulator import DeploymentResult, Settings, SimDeployment, simulate

__all__ = [
    "Advice",
    "Costs",
    "DeploymentResult",
    "Need",
    "Option",
    "OptionReport",
    "Pattern",
    "Question",
    "Recommendation",
    "ServiceTime",
    "Settings",
    "SimDeployment",
    "advise",
    "recommend",
    "simulate",
]
