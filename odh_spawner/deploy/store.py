"""Deployment records on disk: one JSON file per deployment, written atomically (mode 0600 under a 0700 root),
read back at start-up.

A record lives in `<root>/<naming.state_dir_name(owner)>/<name>/`. Records written under the previous naming
scheme (`naming.legacy_state_dir_name`) are still found — every record names its owner, and `load_all` walks
every directory — and are moved to their owner's directory when loaded. A record holds the deployment's API
key: the root is the platform's private state and nothing here logs a record's content.
"""

from __future__ import annotations

import json
import logging
import os
import shutil

from ..naming import state_dir_name
from .model import Deployment

RECORD = "deployment.json"
log = logging.getLogger("odh_spawner.deploy")


class DeploymentStore:
    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        os.makedirs(self.root, mode=0o711, exist_ok=True)
        os.chmod(self.root, 0o711)

    def owner_dir(self, owner: str) -> str:
        return os.path.join(self.root, state_dir_name(owner))

    def directory(self, d: Deployment) -> str:
        return os.path.join(self.owner_dir(d.owner), d.name)

    def version_dir(self, d: Deployment, version: int) -> str:
        return os.path.join(self.directory(d), f"v{version}")

    def save(self, d: Deployment) -> None:
        path = os.path.join(self.directory(d), RECORD)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(d.to_json(), f, indent=1)
        os.replace(tmp, path)

    def remove(self, d: Deployment) -> None:
        shutil.rmtree(self.directory(d), ignore_errors=True)

    def load_all(self, migrate: bool = True) -> list[Deployment]:
        """Every readable record. With `migrate`, a record found outside its owner's directory (the legacy
        naming) is moved there, with its model files; the paths in its runtime bookkeeping follow."""
        found: dict[tuple[str, str], Deployment] = {}
        for owner_dir in sorted(os.listdir(self.root)):
            base = os.path.join(self.root, owner_dir)
            if not os.path.isdir(base):
                continue
            for name in sorted(os.listdir(base)):
                path = os.path.join(base, name, RECORD)
                if not os.path.exists(path):
                    continue
                try:
                    with open(path, encoding="utf-8") as f:
                        d = Deployment.from_json(json.load(f))
                except (OSError, ValueError, TypeError) as e:
                    log.error("Ignoring unreadable deployment record %s: %s", path, e)
                    continue
                here = os.path.join(base, name)
                if here != self.directory(d):
                    if d.key in found or os.path.exists(os.path.join(self.directory(d), RECORD)):
                        log.error("Ignoring deployment record %s: %s/%s has a record in %s already", path,
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
