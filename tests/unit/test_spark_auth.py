"""Isolation of users' Spark clusters, the pure parts: one injective cluster slug built on the per-user slug, the
cluster secret's files (modes, never through a link), the state a restart needs, and the Kubernetes Secret the
cluster's pods and the notebook pod read by reference only."""

import base64
import json
import os
import pwd
import re

import kubernetes_validate
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odh_spawner.host.users import SystemUser
from odh_spawner.naming import user_slug
from odh_spawner.profiles.resolve import SparkRequest
from odh_spawner.spark import auth, kube, uiguard
from odh_spawner.spark.errors import SparkError
from odh_spawner.spark.adopt import user_from_record as _user_from_record
from odh_spawner.spark.local import LocalSparkCluster
from odh_spawner.spark.naming import SLUG_MAX, cluster_slug, legacy_cluster_slug
from odh_spawner.spark.state import ClusterState, ProcessRecord, read_state, write_state

DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
K8S = kubernetes_validate.utils.latest_version()
GI = 2**30
SECRET = "Zm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC1zZWNyZXQ"

# names made to collide: separators, case, the forms' own markers, long names, and anything at all
tricky = st.text(alphabet="aAb1-._ -\u00e9", max_size=45)
names = st.one_of(tricky, st.text(max_size=40), st.sampled_from(["", "a", "a-", "a--b", "a---b", "x--" + "a" * 16]))


@settings(max_examples=3000, deadline=None)
@given(names, names, names, names)
def test_cluster_slugs_are_injective_and_fit_kubernetes_names(u1, s1, u2, s2):
    a, b = cluster_slug(u1, s1), cluster_slug(u2, s2)
    if (u1, s1) != (u2, s2):
        assert a != b, ((u1, s1), (u2, s2), a)
    for slug, (u, s) in ((a, (u1, s1)), (b, (u2, s2))):
        assert len(slug) <= SLUG_MAX and DNS_1123_LABEL.match(slug), slug
        for name in kube.names(u, s).values():
            assert len(name) <= 63 and DNS_1123_LABEL.match(name), name
        assert len(kube.names(u, s)["connect"] + "-server") <= 63  # the operator's Service name


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(names, names), max_size=40, unique=True))
def test_many_servers_never_share_a_cluster(pairs):
    assert len({cluster_slug(u, s) for u, s in pairs}) == len(pairs)


@settings(max_examples=500, deadline=None)
@given(names, names)
def test_cluster_slugs_build_on_the_user_slug(user, server):
    slug = cluster_slug(user, server)
    if not server:
        assert slug == user_slug(user)
    else:
        head = slug.split("---", 1)[0]
        assert user_slug(user).startswith(head)  # the user's own slug, cut to fit when the server name is long


def test_slug_forms():
    assert cluster_slug("alice") == "alice" and cluster_slug("alice", "gpu") == "alice---gpu"
    long = cluster_slug("alice", "a-very-long-server-name-indeed-it-is")
    assert long.startswith("alice---a-very-long") and re.search(r"--[a-z2-7]{16}$", long)
    assert cluster_slug("Bob.Smith", "") == user_slug("Bob.Smith")
    # the previous scheme's names, kept to find what a previous hub version started
    assert legacy_cluster_slug("alice", "gpu") == "alice--gpu" and legacy_cluster_slug("alice") == "alice"


# -- the secret's files -----------------------------------------------------------------------------------------
def test_secrets_are_fresh_and_fit_a_conf_file():
    a, b = auth.new_secret(), auth.new_secret()
    assert a != b and len(a) >= 43 and not re.search(r"\s", a)
    assert auth.render_conf(auth.driver_conf(a)) == f"spark.authenticate true\nspark.authenticate.secret {a}\n"
    with pytest.raises(ValueError):
        auth.render_conf({"spark.authenticate.secret": "x\nspark.master local"})


def test_kept_secret_is_private_and_replaced_whole(tmp_path):
    d = str(tmp_path)
    assert auth.read_secret(d) is None
    auth.write_secret(d, SECRET)
    auth.write_secret(d, SECRET + "2")
    assert auth.read_secret(d) == SECRET + "2"
    assert os.stat(tmp_path / auth.SECRET_FILE).st_mode & 0o777 == 0o600
    auth.remove_secret(d)
    auth.remove_secret(d)  # idempotent
    assert auth.read_secret(d) is None


def test_notebook_conf_is_made_afresh_and_private(tmp_path):
    d = str(tmp_path)
    conf = auth.write_notebook_conf(d, SECRET)
    assert conf == os.path.join(d, auth.NOTEBOOK_CONF)
    # what a user could leave in their own directory is removed, never followed
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    os.symlink(victim, os.path.join(conf, "log4j2.properties"))
    os.unlink(os.path.join(conf, "spark-defaults.conf"))
    os.symlink(victim, os.path.join(conf, "spark-defaults.conf"))
    conf = auth.write_notebook_conf(d, SECRET)
    assert victim.read_text() == "untouched" and os.listdir(conf) == ["spark-defaults.conf"]
    path = os.path.join(conf, "spark-defaults.conf")
    assert not os.path.islink(path) and os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(conf).st_mode & 0o777 == 0o700
    with open(path) as f:
        assert f.read() == auth.render_conf(auth.driver_conf(SECRET))
    auth.remove_notebook_conf(d)
    assert not os.path.exists(conf) and victim.read_text() == "untouched"


# -- what a restart needs, from the state file --------------------------------------------------------------------
def test_state_records_identity_and_authentication(tmp_path):
    me = pwd.getpwuid(os.getuid())
    user = {"name": me.pw_name, "uid": me.pw_uid, "gid": me.pw_gid, "home": "/home/x"}
    write_state(ClusterState(name="c", directory=str(tmp_path), user="alice", authenticate=True, run_as=user))
    state = read_state(str(tmp_path))
    assert state.authenticate and state.run_as == user
    assert _user_from_record(state) == SystemUser(me.pw_name, me.pw_uid, me.pw_gid, "/home/x")
    # a state file of the previous version: no authentication, the platform's own user
    data = state.to_json()
    del data["authenticate"], data["run_as"]
    old = ClusterState.from_json(data)
    assert (old.authenticate, old.run_as, _user_from_record(old)) == (False, None, None)


@pytest.mark.parametrize("change,message", [({"uid": 123456}, "changed"), ({"name": "odh-nobody-such-x"}, "gone"),
                                            ({"uid": "x"}, "gone")])
def test_a_changed_or_missing_system_user_is_refused(tmp_path, change, message):
    me = pwd.getpwuid(os.getuid())
    record = {"name": me.pw_name, "uid": me.pw_uid, "gid": me.pw_gid, "home": "/h", **change}
    with pytest.raises(SparkError, match=message):
        _user_from_record(ClusterState(name="c", directory=str(tmp_path), run_as=record))


def test_attach_needs_the_kept_secret(tmp_path):
    master = ProcessRecord("master", os.getpid(), None, 7077, 8080)
    state = ClusterState(name="c", directory=str(tmp_path / "c"), authenticate=True, worker_cores=1,
                         worker_memory=GI, processes=[master])
    with pytest.raises(SparkError, match="secret is gone"):
        LocalSparkCluster.attach(state)


def test_daemons_authenticate_and_the_notebook_gets_a_conf_dir_not_the_secret(tmp_path):
    cluster = LocalSparkCluster(str(tmp_path), "c", SparkRequest(1, 1, GI), user="alice")
    assert cluster.spark_defaults()["spark.authenticate"] == "true"
    assert "spark.authenticate.secret" not in cluster.spark_defaults()  # the daemons get it in their environment
    env = cluster.notebook_env(python="/usr/bin/python3")
    assert env["SPARK_CONF_DIR"] == os.path.join(str(tmp_path), "c", "notebook-conf")
    assert not [k for k in env if "SECRET" in k]


def test_daemons_kill_nothing_from_their_ui(tmp_path):
    cluster = LocalSparkCluster(str(tmp_path), "c", SparkRequest(1, 1, GI), user="alice", ui_proxy_url="/u/x/spark")
    assert cluster.spark_defaults()["spark.ui.killEnabled"] == "false"


# -- the UI port guard (spark.uiguard), its pure parts ---------------------------------------------------------
def test_the_drivers_ui_is_pinned_to_the_guarded_block():
    assert uiguard.driver_conf(40000, 8) == {"spark.ui.port": "40000", "spark.port.maxRetries": "7"}
    assert uiguard.driver_conf(65535, 1) == {"spark.ui.port": "65535", "spark.port.maxRetries": "0"}
    for first, count in ((65530, 8), (80, 2), (40000, 0)):
        with pytest.raises(ValueError, match="out of range"):
            uiguard.driver_conf(first, count)
    conf = auth.render_conf(auth.driver_conf(SECRET, uiguard.driver_conf(40000, 4)))
    assert conf == ("spark.ui.port 40000\nspark.port.maxRetries 3\nspark.authenticate true\n"
                    f"spark.authenticate.secret {SECRET}\n")
    # a further setting never replaces authentication
    assert auth.driver_conf(SECRET, {"spark.authenticate": "false"})["spark.authenticate"] == "true"


def test_a_guard_needs_an_id_and_an_owner():
    me = pwd.getpwuid(os.getuid())
    owner = SystemUser(me.pw_name, me.pw_uid, me.pw_gid, "/h")
    assert uiguard.UiGuard("abc", owner).active
    assert not uiguard.UiGuard("", owner).active and not uiguard.UiGuard("abc", None).active
    assert uiguard.UiGuard("", owner).guard([40000]) is False  # nothing to guard with: nothing run


def test_state_records_every_ui_port_and_the_guard(tmp_path):
    procs_ = [ProcessRecord("master", 10, 1, 7077, 8080), ProcessRecord("worker-1", 11, 1, 7078, 8081)]
    write_state(ClusterState(name="c", directory=str(tmp_path), processes=procs_, guard_id="1a2b3c4d",
                             driver_ui_ports=[40000, 40001]))
    state = read_state(str(tmp_path))
    assert state.guard_id == "1a2b3c4d" and state.ui_ports == [8080, 8081, 40000, 40001]
    data = state.to_json()
    del data["guard_id"], data["driver_ui_ports"]  # a state file of an earlier version
    old = ClusterState.from_json(data)
    assert (old.guard_id, old.driver_ui_ports, old.ui_ports) == ("", [], [8080, 8081])


# -- Kubernetes -----------------------------------------------------------------------------------------------
def spec(**kw) -> kube.KubeSparkSpec:
    base = dict(user="alice", server="", namespace="odh", image="quay.io/x/y@sha256:" + "a" * 64,
                request=SparkRequest(2, 1, GI), anchor_uid="6f1c0c52-0000-4000-8000-000000000001",
                s3_secret="odh-s3-alice")
    return kube.KubeSparkSpec(**{**base, **kw})


def test_the_clusters_secret_is_a_secret_owned_by_the_anchor():
    s = spec()
    secret = kube.auth_secret(s, SECRET)
    kubernetes_validate.validate(secret, K8S, strict=True)
    assert secret == {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": "spark-alice-auth",
            "namespace": "odh",
            "labels": {"app.kubernetes.io/name": "spark", "app.kubernetes.io/instance": "spark-alice",
                       "app.kubernetes.io/component": "spark-auth", "app.kubernetes.io/managed-by": "odh-hub",
                       "odh-hub/user": "alice", "odh-hub/server": ""},
            "annotations": {"hub.jupyter.org/username": "alice", "hub.jupyter.org/servername": ""},
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "spark-anchor-alice",
                                 "uid": "6f1c0c52-0000-4000-8000-000000000001"}],
        },
        "data": {"secret": base64.b64encode(SECRET.encode()).decode(),
                 "spark-defaults.conf": base64.b64encode(
                     f"spark.authenticate true\nspark.authenticate.secret {SECRET}\n".encode()).decode()},
    }


def test_the_notebooks_conf_on_kubernetes_sets_up_s3a_without_keys():
    conf = base64.b64decode(kube.auth_secret(spec(s3_endpoint="http://rgw.odh.svc:8080"), SECRET)["data"][
        "spark-defaults.conf"]).decode()
    lines = dict(line.split(" ", 1) for line in conf.splitlines())
    assert lines["spark.hadoop.fs.s3a.endpoint"] == "http://rgw.odh.svc:8080"
    assert lines["spark.authenticate.secret"] == SECRET
    assert "EnvironmentVariableCredentialsProvider" in lines["spark.hadoop.fs.s3a.aws.credentials.provider"]
    assert not [k for k in lines if k.endswith((".access.key", ".secret.key"))]  # the pods' env holds them


def test_daemons_and_the_notebook_read_the_secret_by_reference_only():
    s = spec()
    master, worker = kube.master_deployment(s), kube.worker_deployment(s)
    ref = {"name": "_SPARK_AUTH_SECRET",
           "valueFrom": {"secretKeyRef": {"name": "spark-alice-auth", "key": "secret"}}}
    for d in (master, worker):
        (c,) = d["spec"]["template"]["spec"]["containers"]
        assert ref in c["env"]
        opts = next(e["value"] for e in c["env"] if e["name"] in ("SPARK_MASTER_OPTS", "SPARK_WORKER_OPTS"))
        assert "-Dspark.authenticate=true" in opts.split()
    volume, mount = kube.notebook_volume(s)
    assert volume == {"name": "spark-auth", "secret": {
        "secretName": "spark-alice-auth", "items": [{"key": "spark-defaults.conf", "path": "spark-defaults.conf"}],
        "defaultMode": 0o440}}
    assert mount == {"name": "spark-auth", "mountPath": "/etc/odh/spark", "readOnly": True}
    env = kube.notebook_env(s)
    assert env["SPARK_CONF_DIR"] == mount["mountPath"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "jupyter-alice", "namespace": "odh"},
           "spec": {"volumes": [volume], "containers": [{
               "name": "notebook", "image": s.image, "volumeMounts": [mount],
               "env": [{"name": k, "value": v} for k, v in env.items()]}]}}
    kubernetes_validate.validate(pod, K8S, strict=True)
    # no literal secret anywhere but in the Secret itself
    text = json.dumps([master, worker, kube.master_service(s), kube.anchor_configmap(s), pod])
    assert SECRET not in text and base64.b64encode(SECRET.encode()).decode() not in text
