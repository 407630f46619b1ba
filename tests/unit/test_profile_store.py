"""Hot reload: edits change the next spawn; a broken edit keeps the last good profiles and logs why."""

import logging
import os

import pytest
import yaml

from odh_spawner.errors import ProfileError
from odh_spawner.profiles.store import ProfileStore, shared_store
from tests.support.profiles import document, profile


def write(path, doc):
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc)
    path.write_text(text)
    # make sure the stamp changes even on coarse-mtime filesystems
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


def test_first_load_must_succeed(tmp_path):
    path = tmp_path / "p.yaml"
    write(path, "profiles: not-a-list")
    with pytest.raises(ProfileError, match="must be a list"):
        ProfileStore(str(path))


def test_edit_is_seen_without_restart(tmp_path):
    path = tmp_path / "p.yaml"
    write(path, document(profile("a")))
    store = ProfileStore(str(path))
    assert [p.slug for p in store.get()] == ["a"]
    write(path, document(profile("a"), profile("b")))
    assert [p.slug for p in store.get()] == ["a", "b"]


def test_unchanged_file_is_not_reparsed(tmp_path):
    path = tmp_path / "p.yaml"
    write(path, document(profile("a")))
    store = ProfileStore(str(path))
    assert store.get() is store.get()


def test_broken_edit_keeps_last_good_and_logs(tmp_path, caplog):
    path = tmp_path / "p.yaml"
    write(path, document(profile("a")))
    store = ProfileStore(str(path), logging.getLogger("test.store"))
    good = store.get()
    write(path, document(profile("a", image="x/y:latest")))
    with caplog.at_level(logging.ERROR, logger="test.store"):
        assert store.get() == good
        assert store.get() == good
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, "a broken edit is logged once, not on every spawn"
    assert "not pinned by digest" in errors[0].getMessage() and "'a'" in errors[0].getMessage()
    assert isinstance(store.last_error, ProfileError)
    write(path, document(profile("c")))
    assert [p.slug for p in store.get()] == ["c"]
    assert store.last_error is None


def test_deleted_file_keeps_last_good(tmp_path):
    path = tmp_path / "p.yaml"
    write(path, document(profile("a")))
    store = ProfileStore(str(path))
    path.unlink()
    assert [p.slug for p in store.get()] == ["a"]
    assert "Cannot read" in str(store.last_error)


def test_configmap_style_symlink_swap(tmp_path):
    """Kubernetes ConfigMap volumes swap a ..data symlink; the store follows it."""
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    v1.mkdir(), v2.mkdir()
    write(v1 / "profiles.yaml", document(profile("a")))
    write(v2 / "profiles.yaml", document(profile("b")))
    (tmp_path / "..data").symlink_to(v1)
    (tmp_path / "profiles.yaml").symlink_to(tmp_path / "..data" / "profiles.yaml")
    store = ProfileStore(str(tmp_path / "profiles.yaml"))
    assert store.get()[0].slug == "a"
    (tmp_path / "..data_tmp").symlink_to(v2)
    os.replace(tmp_path / "..data_tmp", tmp_path / "..data")
    assert store.get()[0].slug == "b"


def test_shared_store_is_one_per_file(tmp_path):
    path = tmp_path / "p.yaml"
    write(path, document(profile("a")))
    assert shared_store(str(path)) is shared_store(str(tmp_path / "." / "p.yaml"))
