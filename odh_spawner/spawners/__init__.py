"""JupyterHub spawners: what both share (`mixin`: profile, credentials, Spark limits, progress `stages`), the
local spawner (`local`, waiting with `readiness`) and the Kubernetes one (`kube`, with `kube_spark` for the
server's Spark cluster and `pod_progress` for the progress page).

Entry points (pyproject.toml, `jupyterhub.spawners`): `odh-local` and `odh-kube`; the classes are imported
from their modules, e.g. `odh_spawner.spawners.local.OdhLocalSpawner`."""
