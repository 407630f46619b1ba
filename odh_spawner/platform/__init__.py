"""The odh platform service: a JupyterHub service owning what outlives notebook servers (deployments) and
what changes the cluster on a user's behalf (Spark scaling). Authenticated by hub tokens."""
