"""Hot-reloading profile store: the next spawn sees an edited file; a broken edit keeps the last good one."""

from __future__ import annotations

import logging
import os
import threading

from odh_spawner.errors import ProfileError
from odh_spawner.profiles.format import Profile, load_profiles

log = logging.getLogger("odh_spawner.profiles.store")


class ProfileStore:
    """Profiles from one file, re-read when its (mtime, size, inode) changes.

    The first load must succeed (a hub must not start with no profiles); later broken edits are logged
    and the last good profiles stay in force until the file is fixed.
    """

    def __init__(self, path: str, logger: logging.Logger | None = None):
        self.path = path
        self.log = logger or log
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._profiles: tuple[Profile, ...] | None = None
        self.last_error: ProfileError | None = None
        self.get()  # fail fast on a broken first load

    def _file_stamp(self):
        st = os.stat(self.path)  # follows symlinks, so ConfigMap ..data swaps are seen
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def get(self) -> tuple[Profile, ...]:
        with self._lock:
            try:
                stamp = self._file_stamp()
            except OSError as e:
                err = ProfileError(f"Cannot read: {e.strerror}.", source=self.path)
                return self._keep_last_good(err, None)
            if stamp == self._stamp and self._profiles is not None:
                return self._profiles
            try:
                profiles = load_profiles(self.path)
            except ProfileError as err:
                return self._keep_last_good(err, stamp)
            if self._profiles is not None:
                self.log.info("Reloaded %d profiles from %s", len(profiles), self.path)
            self._profiles, self._stamp, self.last_error = profiles, stamp, None
            return profiles

    def _keep_last_good(self, err: ProfileError, stamp) -> tuple[Profile, ...]:
        if self._profiles is None:
            raise err
        if stamp != self._stamp or self.last_error is None:
            self.log.error("Keeping the last good profiles; the edited file is invalid: %s", err)
        self._stamp = stamp if stamp is not None else self._stamp
        self.last_error = err
        return self._profiles


_stores: dict[str, ProfileStore] = {}
_stores_lock = threading.Lock()


def shared_store(path: str, logger: logging.Logger | None = None) -> ProfileStore:
    """One store per file per process, shared by every spawner instance."""
    path = os.path.abspath(path)
    with _stores_lock:
        store = _stores.get(path)
        if store is None:
            store = _stores[path] = ProfileStore(path, logger)
        return store
