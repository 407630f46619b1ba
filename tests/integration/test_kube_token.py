"""OdhKubeSpawner hands each server its JupyterHub API token through a per-server Secret (against the emulated
API server of test_kube_emulated.py; not a cluster): the pod reads it by secretKeyRef, the token never appears
in the pod, the Secret is replaced at the next start and deleted when the server stops."""

import asyncio
import json

from tests.integration.test_kube_emulated import (emulator, kube_spawner, kubeconfig,  # noqa: F401 (fixtures)
                                                  kubelet, requests_to, stored, validate_everything)

TOKEN, NEXT_TOKEN = "a1b2c3d4e5f60718293a4b5c6d7e8f90", "f0e1d2c3b4a5968778695a4b3c2d1e0f"


async def test_the_hub_token_lives_in_a_secret_for_the_servers_life(emulator, kube_spawner, kubelet):  # noqa: F811
    sp = kube_spawner()
    sp.api_token = TOKEN
    await sp._apply_odh_options(sp, {"profile": "minimal"})
    await asyncio.wait_for(sp.start(), 15)
    secret = stored(emulator, "v1/secrets", "jupyter-alice-hub-token")
    assert secret["stringData"] == {"token": TOKEN}
    assert secret["metadata"]["annotations"]["hub.jupyter.org/username"] == "alice"
    pod = stored(emulator, "v1/pods", "jupyter-alice")
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    assert env["JUPYTERHUB_API_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "jupyter-alice-hub-token",
                                                                         "key": "token"}}
    sent_pods = [body for method, path, body in emulator.sent if method == "POST" and path.endswith("/pods")]
    assert sent_pods and TOKEN not in json.dumps(sent_pods)
    posts = [path for method, path, _ in emulator.sent if method == "POST"]
    assert posts.index("/api/v1/namespaces/odh/secrets") < posts.index("/api/v1/namespaces/odh/pods")

    await sp.stop()
    await sp.run_post_stop_hook()
    assert stored(emulator, "v1/secrets", "jupyter-alice-hub-token") is None

    # a hub that crashed left the Secret: the next start replaces it with the new token
    sp.api_token = NEXT_TOKEN
    await asyncio.wait_for(sp.start(), 15)
    await sp.stop()  # no post-stop hook: the Secret is left, as after a crash
    sp.api_token = TOKEN
    await asyncio.wait_for(sp.start(), 15)
    assert stored(emulator, "v1/secrets", "jupyter-alice-hub-token")["stringData"] == {"token": TOKEN}
    assert len(requests_to(emulator, "PUT", "/secrets/jupyter-alice-hub-token")) == 1
    await sp.stop()
    await sp.run_post_stop_hook()
    assert stored(emulator, "v1/secrets", "jupyter-alice-hub-token") is None
    assert validate_everything(emulator) >= 4
