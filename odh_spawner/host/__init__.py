"""This machine, for the local platform: system users and homes (`users`), cgroup limits (`limits`), records
on disk (`records`), lock environments (`environments`), free ports (`ports`), the model-port guard
(`portguard`), processes by PID (`procs`), restart budget and back-off (`supervise`), the processes the platform
owns for users — start as a user, know again, log, stop (`owned`) — and reading what a user could have replaced,
never through a link or a FIFO (`safefiles`). Imports only the shared basics."""
