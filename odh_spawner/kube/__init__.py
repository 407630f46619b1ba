"""The Kubernetes API, shared by every Kubernetes backend: the client settings (`client`), retryable attempts
(`attempts`), label helpers (`labels`) and pod pieces built from a SpawnPlan (`pods`). Imports only the shared
basics and `profiles`."""
