"""This machine, for the local platform: system users and homes (`users`), cgroup limits (`limits`), records
on disk (`records`), lock environments (`environments`), free ports (`ports`), the model-port guard
(`portguard`), and the processes the platform owns (`procs`, `supervise`). Imports only the shared basics."""
