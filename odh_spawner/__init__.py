"""odh-hub, hub side: image profiles, spawners, the platform service, and the local platform.

Rooms, lowest layer first (a module imports from its own room or a room of a lower layer, never the reverse;
tests/unit/test_layout.py checks it, and that no import cycle exists, lazy imports included):

0. shared basics, loose in this folder: `errors` (typed errors), `naming` (the one injective per-user slug),
   `quantities` (CPU and memory sizes; `format_bytes`, the one way sizes are written for people),
   `tasks` (asyncio helpers)
1. `profiles/`    what admins offer and what a user may ask for: format, resolve (pure), form, store
   `metrics/`     Prometheus metrics: the hub side's counters, the platform's families from a snapshot (pure)
2. `auth/`        who may log in: user file, passwords, authenticator
   `host/`        this machine: system users, cgroups, records, lock environments, ports, port guard, processes
   `kube/`        the Kubernetes API: client, retried attempts, labels, pod pieces from a SpawnPlan
3. `credentials/` per-user object-storage users and keys
4. `spark/`, `deploy/`, `ingest/`  the features: each a pure model and manifests, a local and a Kubernetes
   backend, and a manager
5. `spawners/`    JupyterHub spawners (local, Kubernetes) sharing one mixin
   `platform/`    the platform service: REST API per feature, assembled in `platform.routes`, and the gateway
6. `localplatform/`  `odh-hub up`: the whole platform as local processes
   `kubeplatform/`   the Helm chart's hub configuration
7. `cli`          the `odh-hub` command

Where a change goes: a new rule about what users may ask for goes to `profiles/`; anything touching this
machine's users, processes or files to `host/`; Kubernetes plumbing used by more than one feature to `kube/`;
a feature's own logic to its room in layer 4. The notebook side is `server_extension/` (users import it as
`odh_hub`); of this package it uses only the pure ingestion rules (`ingest.spec`, `ingest.keys`,
`ingest.encode`) and `quantities` (its one size formatter, `format_bytes`), which the notebook wheel ships.
"""

__version__ = "0.1.0"
