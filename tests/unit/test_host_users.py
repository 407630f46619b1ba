"""Homes made before system users are handed to their user; links planted back then hand over nothing."""

import os

import pytest

from odh_spawner.host.users import SystemUser, adopt_home, ensure_traversable

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root (CI runs as root)")


def test_an_old_home_is_adopted_without_following_links(tmp_path):
    home = tmp_path / "home" / "alice"
    (home / "notebooks").mkdir(parents=True)
    (home / "notebooks" / "a.ipynb").write_text("{}")
    outside = tmp_path / "outside.txt"
    outside.write_text("not alice's")
    os.link(outside, home / "hardlink.txt")          # a second link to a file that is not hers
    os.symlink(outside, home / "symlink.txt")        # a symlink: only the link itself changes owner
    user = SystemUser("odh-test", 54321, 54321, str(home))
    assert adopt_home(str(home), user) == 3  # notebooks/, notebooks/a.ipynb, symlink.txt
    assert os.stat(home / "notebooks" / "a.ipynb").st_uid == 54321
    assert os.lstat(home / "symlink.txt").st_uid == 54321
    assert os.stat(outside).st_uid == 0 and os.stat(home / "hardlink.txt").st_uid == 0


def test_ensure_traversable_adds_search_only(tmp_path):
    d = tmp_path / "a" / "b"
    d.mkdir(parents=True)
    os.chmod(tmp_path / "a", 0o700)
    changed = ensure_traversable(str(d))
    assert str(tmp_path / "a") in changed
    assert os.stat(tmp_path / "a").st_mode & 0o777 == 0o711


def test_a_link_to_a_directory_is_never_entered_and_directories_change_owner_after_their_contents(tmp_path):
    home = tmp_path / "home" / "alice"
    (home / "a" / "b").mkdir(parents=True)
    (home / "a" / "b" / "f.txt").write_text("x")
    outside = tmp_path / "etc"
    outside.mkdir()
    (outside / "secret").write_text("root's")
    os.symlink(outside, home / "a" / "etc")  # as if a directory had been swapped for a link
    user = SystemUser("odh-test", 54321, 54321, str(home))
    seen = []
    real_chown = os.chown

    def chown(name, uid, gid, *, dir_fd=None, follow_symlinks=True):
        seen.append(os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), name))
        real_chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=follow_symlinks)

    os.chown = chown
    try:
        assert adopt_home(str(home), user) == 4  # a, a/b, a/b/f.txt, a/etc (the link itself)
    finally:
        os.chown = real_chown
    assert os.stat(outside / "secret").st_uid == 0 and os.stat(outside).st_uid == 0
    assert os.lstat(home / "a" / "etc").st_uid == 54321
    order = {p: i for i, p in enumerate(seen)}
    assert order[str(home / "a" / "b" / "f.txt")] < order[str(home / "a" / "b")] < order[str(home / "a")]
