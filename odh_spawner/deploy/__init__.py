"""Model deployments: one-click deploy from the notebook, owned by the platform service."""
