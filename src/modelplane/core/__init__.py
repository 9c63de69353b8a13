"""The platform's operations every front shares: deployments, accounts, jobs and buckets.

The native REST routes and the OSCAR API both call these; ``controlplane`` builds them and mounts
the fronts, so nothing here imports ``controlplane`` (it reaches the reconciler through the
:class:`~modelplane.core.deps.Runtime` protocol)."""
