"""The control plane: REST API, auth, the reconciler, and the platform that wires them."""
