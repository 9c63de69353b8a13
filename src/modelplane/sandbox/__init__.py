"""How a replica process is confined: identity, visible paths, network (see docs/security.md)."""

from modelplane.sandbox.bubblewrap import INSTALL_HINT, Host, Sandbox, probe
from modelplane.sandbox.policy import (
    SANDBOX_RESULTS,
    SANDBOX_SOCKET,
    Confinement,
    Identity,
    bwrap_argv,
)

__all__ = [
    "INSTALL_HINT",
    "SANDBOX_RESULTS",
    "SANDBOX_SOCKET",
    "Confinement",
    "Host",
    "Identity",
    "Sandbox",
    "bwrap_argv",
    "probe",
]
