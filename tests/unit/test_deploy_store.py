"""Deployment records on disk: per-user directories named by odh_spawner.naming.state_dir_name, records of the
previous naming found and moved, mode 0600 under a 0700 root (records hold API keys)."""

import json
import os
import stat

from odh_spawner.deploy.model import Deployment
from odh_spawner.deploy.store import RECORD, DeploymentStore
from odh_spawner.naming import legacy_state_dir_name, state_dir_name


def deployment(owner: str, name: str = "churn", **kw) -> Deployment:
    d = Deployment(owner=owner, name=name, model_name=f"m.{name}", api_key="odhk_secret", **kw)
    d.add_version("s3://b/p/", "sklearn")
    return d


def test_records_go_to_the_injective_state_dir_with_private_modes(tmp_path):
    store = DeploymentStore(str(tmp_path / "deployments"))
    for owner in ("alice", "Alice", "alice.smith@example.org"):
        store.save(deployment(owner))
        assert os.path.exists(tmp_path / "deployments" / state_dir_name(owner) / "churn" / RECORD)
    # traversable (model servers run as their owners and pass through), not listable; records 0600
    assert stat.S_IMODE(os.stat(tmp_path / "deployments").st_mode) == 0o711
    record = tmp_path / "deployments" / state_dir_name("Alice") / "churn" / RECORD
    assert stat.S_IMODE(os.stat(record).st_mode) == 0o600
    assert state_dir_name("Alice") != legacy_state_dir_name("Alice")
    assert sorted(d.owner for d in store.load_all()) == ["Alice", "alice", "alice.smith@example.org"]


def write_legacy(root, d: Deployment, files: bool = True) -> str:
    """A record as the previous scheme wrote it, with a served version's files and runtime bookkeeping."""
    old = os.path.join(root, legacy_state_dir_name(d.owner), d.name)
    os.makedirs(os.path.join(old, "v1"))
    if files:
        with open(os.path.join(old, "v1", "model.joblib"), "w") as f:
            f.write("model")
    d.runtime["serving"] = {"pid": 4242, "dir": os.path.join(old, "v1"), "port": 1234}
    with open(os.path.join(old, RECORD), "w") as f:
        json.dump(d.to_json(), f)
    return old


def test_legacy_records_are_loaded_and_moved_to_the_owners_directory(tmp_path):
    root = str(tmp_path / "deployments")
    store = DeploymentStore(root)
    old = write_legacy(root, deployment("Jane.Doe"))
    (d,) = store.load_all()
    new = os.path.join(root, state_dir_name("Jane.Doe"), "churn")
    assert d.owner == "Jane.Doe" and store.directory(d) == new
    assert not os.path.exists(old) and not os.path.exists(os.path.dirname(old))  # the empty legacy dir is gone
    assert open(os.path.join(new, "v1", "model.joblib")).read() == "model"
    # the running process is still recognised by the directory on its command line
    assert d.runtime["serving"]["dir"] == os.path.join(new, "v1")
    assert d.runtime["serving"]["cmd_dir"] == os.path.join(old, "v1")
    with open(os.path.join(new, RECORD)) as f:
        assert json.load(f)["runtime"]["serving"]["dir"] == os.path.join(new, "v1")
    (again,) = store.load_all()  # idempotent
    assert again.to_json() == d.to_json()


def test_a_plain_name_keeps_its_directory(tmp_path):
    root = str(tmp_path / "deployments")
    assert legacy_state_dir_name("alice") == state_dir_name("alice") == "alice"
    write_legacy(root, deployment("alice"))
    (d,) = DeploymentStore(root).load_all()
    assert "cmd_dir" not in d.runtime["serving"]


def test_without_migrate_nothing_moves(tmp_path):
    root = str(tmp_path / "deployments")
    old = write_legacy(root, deployment("Jane.Doe"))
    (d,) = DeploymentStore(root).load_all(migrate=False)
    assert d.owner == "Jane.Doe" and os.path.exists(os.path.join(old, RECORD))


def test_a_legacy_record_beside_a_current_one_is_ignored(tmp_path, caplog):
    root = str(tmp_path / "deployments")
    store = DeploymentStore(root)
    current = deployment("Jane.Doe")
    current.restarts = 7
    store.save(current)
    old = write_legacy(root, deployment("Jane.Doe"))
    (d,) = store.load_all()
    assert d.restarts == 7 and os.path.exists(old)
    assert "has a record in" in caplog.text
    assert "odhk_secret" not in caplog.text  # never the record's content
