"""Deployment records on disk: one JSON file per deployment, written atomically (mode 0600 under a 0700 root),
read back at start-up.

A record lives in `<root>/<naming.state_dir_name(owner)>/<name>/` (odh_spawner.host.records). Records written under
the previous naming scheme (`naming.legacy_state_dir_name`) are still found — every record names its owner, and `load_all` walks
every directory — and are moved to their owner's directory when loaded. A record holds the deployment's API
key: the root is the platform's private state and nothing here logs a record's content.
"""

from __future__ import annotations

import logging
import os

from odh_spawner.host.records import RecordStore
from odh_spawner.deploy.model import Deployment

RECORD = "deployment.json"
log = logging.getLogger("odh_spawner.deploy")


class DeploymentStore(RecordStore):
    def __init__(self, root: str):
        super().__init__(root, RECORD, Deployment.from_json, dir_mode=0o700, log=log)

    def version_dir(self, d: Deployment, version: int) -> str:
        return os.path.join(self.directory(d), f"v{version}")

    def load_all(self, migrate: bool = True) -> list[Deployment]:
        """Every readable record. With `migrate`, a record found outside its owner's directory (the legacy
        naming) is moved there, with its model files; the paths in its runtime bookkeeping follow."""
        found: dict[tuple[str, str], Deployment] = {}
        for here, d in self.walk():
            if here != self.directory(d):
                if d.key in found or os.path.exists(os.path.join(self.directory(d), RECORD)):
                    log.error("Ignoring deployment record in %s: %s/%s has a record in %s already", here,
                              d.owner, d.name, self.directory(d))
                    continue
                if migrate:
                    self._move(d, here)
            found[d.key] = d
        return list(found.values())

    def _move(self, d: Deployment, old: str) -> None:
        """Move a record's directory from `old` (legacy naming) to its owner's directory. A model server
        started from the old directory keeps running (a rename keeps its files); its runtime entry remembers
        the path on its command line (`cmd_dir`) so it is still recognised."""
        new = self.directory(d)
        os.makedirs(os.path.dirname(new), mode=0o700, exist_ok=True)
        try:
            os.rename(old, new)
        except OSError as e:
            log.error("Could not move deployment %s/%s from %s to %s: %s", d.owner, d.name, old, new, e)
            return
        for rt in d.runtime.values():
            if isinstance(rt, dict) and isinstance(rt.get("dir"), str) and (
                    rt["dir"] == old or rt["dir"].startswith(old + os.sep)):
                rt.setdefault("cmd_dir", rt["dir"])
                rt["dir"] = new + rt["dir"][len(old):]
        self.save(d)
        try:
            os.rmdir(os.path.dirname(old))  # the legacy owner directory, once empty
        except OSError:
            pass
        log.info("Moved deployment %s/%s to %s", d.owner, d.name, new)
