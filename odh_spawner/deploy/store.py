"""Deployment records on disk: one JSON file per deployment, written atomically, read back at start-up."""

from __future__ import annotations

import json
import logging
import os
import shutil

from ..naming import state_dir_name
from .model import Deployment

RECORD = "deployment.json"
log = logging.getLogger("odh_spawner.deploy")


def owner_slug(owner: str) -> str:
    return state_dir_name(owner)


class DeploymentStore:
    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        os.makedirs(self.root, mode=0o700, exist_ok=True)

    def directory(self, d: Deployment) -> str:
        return os.path.join(self.root, owner_slug(d.owner), d.name)

    def version_dir(self, d: Deployment, version: int) -> str:
        return os.path.join(self.directory(d), f"v{version}")

    def save(self, d: Deployment) -> None:
        path = os.path.join(self.directory(d), RECORD)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(d.to_json(), f, indent=1)
        os.replace(tmp, path)

    def remove(self, d: Deployment) -> None:
        shutil.rmtree(self.directory(d), ignore_errors=True)

    def load_all(self) -> list[Deployment]:
        found = []
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
                        found.append(Deployment.from_json(json.load(f)))
                except (OSError, ValueError, TypeError) as e:
                    log.error("Ignoring unreadable deployment record %s: %s", path, e)
        return found
