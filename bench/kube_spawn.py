"""Spawn to ready through a REAL Kubernetes API server (kube-apiserver, controller-manager and scheduler v1.20.2
of tests/support/k8s_control_plane.py, built once by scripts/k8s-controlplane.sh) with the TEST kubelet of
tests/support/kubelet.py marking the pod Running/Ready (no real kubelet, no container runs: what is measured is
the spawner's work against the API server, the scheduler's binding and the watches, not an image pull or a
container start).

ours:     OdhKubeSpawner, profile `datascience` with a 1-worker Spark cluster, as JupyterHub drives it: the plan
          (profile, size), the user's own RGW keys from a real Ceph RGW (Admin Ops API) stored in the per-user
          credential Secret, the hub-token Secret, the Spark side resources (anchor ConfigMap, master and worker
          Deployments, master Service, auth Secret), then the pod, until KubeSpawner sees it ready;
baseline: plain kubespawner.KubeSpawner with the same pod (the same traits ours set for it: image, resources,
          env, volumes, labels, annotations; the hub token as a literal env value, KubeSpawner's default), no
          Secrets, no Spark objects, no RGW.
Both in one process on one event loop (the test kubelet too, as in the tests), the same user, started and stopped
ROUNDS times each, alternating which goes first, after one warm-up each (the first ours creates the user's RGW
user; the first start of any spawner starts the shared pod and event reflectors). Time = the start of the spawn
(ours: the plan, as JupyterHub's apply_user_options; both: start()) until start() returns the server's URL.
Between starts everything of the previous one is gone (pod finalized by the test kubelet, Spark objects
garbage-collected by the real controller-manager). Medians. Target: ratio <= 1.2.

Also, interleaved in the same rounds: `ours_no_spark`, the same OdhKubeSpawner spawn without the Spark cluster
(credentials and hub-token Secrets, the pod), and `breakdown`: the median seconds of ours' plan + credentials
(RGW keys, the credential Secret) vs. start() (hub-token Secret, Spark objects, pod until ready), with the
spawner's own stage durations (odh_spawner.spawners.stages)."""

import asyncio
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench._common import median, write_result  # noqa: E402
from odh_spawner.localplatform.ceph import CephCluster  # noqa: E402
from tests.support.k8s_control_plane import K8S_VERSION, ControlPlane, bin_dir  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "21"))
USER, TOKEN = "alice", "b3nch" + os.urandom(14).hex()
OPTIONS = {"profile": "datascience", "spark": {"workers": 1}}
NO_SPARK = {"profile": "datascience", "spark": False}  # `ours_no_spark`: the same spawn without the Spark cluster
# the traits OdhKubeSpawner sets from the plan and the Spark cluster: the baseline's pod gets the same values
POD_TRAITS = ("image", "cpu_limit", "cpu_guarantee", "mem_limit", "mem_guarantee", "extra_resource_limits",
              "extra_resource_guarantees", "node_selector", "tolerations", "volumes", "volume_mounts", "environment",
              "extra_labels", "extra_annotations")


def spawner_factory(cp, ns: str, ceph):
    """make(kind) -> a spawner object as JupyterHub's User builds one (tests/support/kube_real.py's way)."""
    import kubespawner.clients
    from jupyterhub.objects import Hub
    from kubernetes_asyncio.config import kube_config
    from kubespawner import KubeSpawner
    from traitlets.config import Config

    from odh_spawner.spawners.kube import OdhKubeSpawner
    from tests.support.kube import Group, HubUser
    from tests.support.kube_real import DEMO_PROFILES

    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = cp.kubeconfig
    kubespawner.clients.load_config.cache_clear()

    def make(kind: str, traits: dict | None = None):
        c = Config()
        section = c.OdhKubeSpawner if kind == "ours" else c.KubeSpawner
        section.namespace = ns
        section.start_timeout = 60
        if kind == "ours":
            c.OdhKubeSpawner.profiles_path = DEMO_PROFILES
            c.OdhStorage.admin_endpoint = ceph.endpoint
            c.OdhStorage.admin_keys_file = ceph.admin_keys_file
        cls = OdhKubeSpawner if kind == "ours" else KubeSpawner
        sp = cls(config=c, user=HubUser(USER, [Group("data-science")]), hub=Hub(), orm_spawner=None)
        for k, v in (traits or {}).items():
            setattr(sp, k, v)
        sp.api_token = TOKEN
        return sp

    return make


async def spawn(make, kind: str, traits: dict | None = None, parts: dict | None = None) -> tuple[float, object]:
    sp = make("baseline" if kind == "baseline" else "ours", traits)
    t0 = time.perf_counter()
    if kind != "baseline":  # JupyterHub's apply_user_options hook, part of the spawn
        await sp._apply_odh_options(sp, OPTIONS if kind == "ours" else NO_SPARK)
    t1 = time.perf_counter()
    url = await asyncio.wait_for(sp.start(), 90)
    took = time.perf_counter() - t0
    assert url and url.startswith("http://10.244."), url  # the podIP the test kubelet reported
    if parts is not None and kind != "baseline":
        parts.setdefault(kind, []).append({"plan_and_credentials": t1 - t0, "start": took - (t1 - t0),
                                           **{f"stage_{k}": v for k, v in sp.spawn_stages.items()}})
    return took, sp


def leftovers(cp, ns: str) -> list[str]:
    out = []
    for path in (f"/api/v1/namespaces/{ns}/pods", f"/apis/apps/v1/namespaces/{ns}/deployments",
                 f"/apis/apps/v1/namespaces/{ns}/replicasets", f"/api/v1/namespaces/{ns}/configmaps"):
        r = cp.api("GET", path)
        assert r.ok, (path, r.status)
        out += [f"{path.rsplit('/', 1)[-1]}/{i['metadata']['name']}" for i in r.body["items"]
                if i["metadata"]["name"] != "kube-root-ca.crt"]
    return out


async def stop(cp, ns: str, sp) -> None:
    """As JupyterHub stops a server (stop, then the post-stop hook); then wait until nothing of it is left."""
    from jupyterhub.utils import maybe_future

    await sp.stop()
    await maybe_future(sp.run_post_stop_hook())  # KubeSpawner's is not a coroutine, ours is
    deadline = time.monotonic() + 90
    while left := leftovers(cp, ns):
        if time.monotonic() > deadline:
            raise RuntimeError(f"left after stop: {left}")
        await asyncio.sleep(0.1)


def snapshot(cp, ns: str) -> dict:
    """What a started server of each kind made in the namespace (kind -> names), for the JSON."""
    out = {}
    for kind in ("secrets", "configmaps", "services", "pods", "deployments"):
        path = f"/apis/apps/v1/namespaces/{ns}/{kind}" if kind == "deployments" else f"/api/v1/namespaces/{ns}/{kind}"
        names = sorted(n for n in (i["metadata"]["name"] for i in cp.api("GET", path).body["items"])
                       if n != "kube-root-ca.crt" and not n.startswith("default-token"))
        if names:
            out[kind] = names
    return out


async def run(cp, ns: str, ceph) -> dict:
    from odh_spawner.spawners.kube import OdhKubeSpawner
    from tests.support.kubelet import TestKubelet

    make = spawner_factory(cp, ns, ceph)
    times = {"ours": [], "baseline": [], "ours_no_spark": []}
    parts: dict = {}
    async with TestKubelet(cp.kubeconfig, ns):
        try:
            took, sp = await spawn(make, "ours")  # warm-up: alice's RGW user, the reflectors
            made = {"ours": snapshot(cp, ns)}
            traits = {k: getattr(sp, k) for k in POD_TRAITS}
            ours_pod = cp.api("GET", f"/api/v1/namespaces/{ns}/pods/{sp.pod_name}").body
            await stop(cp, ns, sp)
            warm = {"ours": round(took, 3)}
            took, sp = await spawn(make, "baseline", traits)
            made["baseline"] = snapshot(cp, ns)
            base_pod = cp.api("GET", f"/api/v1/namespaces/{ns}/pods/{sp.pod_name}").body
            await stop(cp, ns, sp)
            warm["baseline"] = round(took, 3)
            same = same_pod(ours_pod, base_pod)
            took, sp = await spawn(make, "ours_no_spark")
            await stop(cp, ns, sp)
            warm["ours_no_spark"] = round(took, 3)
            kinds = ["ours", "baseline", "ours_no_spark"]
            for i in range(ROUNDS):
                for kind in kinds[i % 3:] + kinds[:i % 3]:  # each goes first, second and third in turn
                    took, sp = await spawn(make, kind, traits if kind == "baseline" else None, parts)
                    times[kind].append(took)
                    await stop(cp, ns, sp)
                print(f"round {i}: ours {times['ours'][-1]:.3f}s, baseline {times['baseline'][-1]:.3f}s, "
                      f"ours without Spark {times['ours_no_spark'][-1]:.3f}s, load {os.getloadavg()[0]:.2f}")
        finally:
            await OdhKubeSpawner._stop_all_reflectors()
    breakdown = {kind: {k: round(median([p[k] for p in ps]), 3) for k in ps[0]} for kind, ps in parts.items()}
    return {"times": times, "warm_up": warm, "made": made, "same_pod": same, "breakdown": breakdown}


def same_pod(a: dict, b: dict) -> dict:
    """How the two pods differ (spec and labels), to show they are the same pod but for the hub token."""
    ca, cb = a["spec"]["containers"][0], b["spec"]["containers"][0]
    env_a = {e["name"]: e.get("value", e.get("valueFrom")) for e in ca.get("env", [])}
    env_b = {e["name"]: e.get("value", e.get("valueFrom")) for e in cb.get("env", [])}
    differ = sorted(k for k in set(env_a) | set(env_b) if env_a.get(k) != env_b.get(k))
    shown = {k: {"ours": env_a.get(k), "baseline": env_b.get(k)} for k in differ if "TOKEN" not in k}
    return {"image": ca["image"] == cb["image"], "resources": ca["resources"] == cb["resources"],
            "volumes": a["spec"].get("volumes") == b["spec"].get("volumes"),
            "labels": a["metadata"]["labels"] == b["metadata"]["labels"], "env_keys_that_differ": differ,
            "env_that_differs_but_tokens": shown}


def main() -> None:
    from tests.support.kube_real import create_bound_pvc

    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="odh-bench-kube-") as tmp:
        os.makedirs(os.path.join(tmp, "k8s"))
        cp = ControlPlane(bin_dir(), __import__("pathlib").Path(tmp, "k8s"))
        ceph = None
        try:
            cp.start()
            ceph = CephCluster(os.path.join(tmp, "ceph"), report=print).start()
            ns = cp.create_namespace("bench")
            create_bound_pvc(cp, ns, f"data-{USER}")  # the profile's data volume, as an admin creates it
            load_before = [round(x, 2) for x in os.getloadavg()]
            result = asyncio.run(run(cp, ns, ceph))
            load_after = [round(x, 2) for x in os.getloadavg()]
            rss = {k: round(v / 2**20) for k, v in cp.rss().items()}
        finally:
            if ceph is not None:
                ceph.stop()
            cp.stop()
    times = result["times"]
    o, b = median(times["ours"]), median(times["baseline"])
    write_result(
        "kube_spawn",
        figure=(f"median spawn-to-ready through a real kube-apiserver {K8S_VERSION} (test kubelet marks pods "
                f"Ready), {ROUNDS} rounds alternating: OdhKubeSpawner (profile datascience + 1-worker Spark, "
                f"per-user RGW credential Secret, hub-token Secret, Spark anchor/Deployments/Service) vs plain "
                f"KubeSpawner with the same pod"),
        ours=o, baseline=b, target=1.2, units="seconds (ratio ours/baseline)", met=o <= 1.2 * b,
        samples={k: [round(x, 3) for x in v] for k, v in times.items()},
        ours_no_spark=round(median(times["ours_no_spark"]), 6),
        ratio_no_spark=round(median(times["ours_no_spark"]) / b, 4),
        breakdown=result["breakdown"],
        warm_up=result["warm_up"], objects_made=result["made"], same_pod=result["same_pod"],
        storage="real Ceph RGW (per-user keys through the Admin Ops API)",
        control_plane_rss_mib=rss, load_average_before=load_before, load_average_after=load_after,
        bench_seconds=round(time.monotonic() - t_start),
        note=("No real kubelet: the test kubelet (tests/support/kubelet.py) patches pods/status once the real "
              "scheduler bound the pod; no container starts. Run on a machine shared with other test sessions "
              "(load_average)."))


if __name__ == "__main__":
    main()
