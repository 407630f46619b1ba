"""Ingestion records on disk: `<root>/<state_dir_name(owner)>/<name>/ingestion.json`, written atomically, mode
0600 (the platform's own); the worker's run directory `run/` beside it belongs to the owner's system user (its
status file and log). Directories are 0711: a worker passes through to its own run directory only."""

from __future__ import annotations

import json
import logging
import os
import shutil

from ..naming import state_dir_name
from .model import Ingestion

RECORD = "ingestion.json"
log = logging.getLogger("odh_spawner.ingest")


class IngestionStore:
    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        os.makedirs(self.root, mode=0o711, exist_ok=True)
        os.chmod(self.root, 0o711)

    def directory(self, ing: Ingestion) -> str:
        return os.path.join(self.root, state_dir_name(ing.owner), ing.name)

    def run_dir(self, ing: Ingestion) -> str:
        return os.path.join(self.directory(ing), "run")

    def save(self, ing: Ingestion) -> None:
        d = self.directory(ing)
        os.makedirs(d, mode=0o711, exist_ok=True)
        os.chmod(os.path.dirname(d), 0o711)
        os.chmod(d, 0o711)
        path = os.path.join(d, RECORD)
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(ing.to_json(), f, indent=1)
        os.replace(tmp, path)

    def remove(self, ing: Ingestion) -> None:
        shutil.rmtree(self.directory(ing), ignore_errors=True)

    def load_all(self) -> list[Ingestion]:
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
                        ing = Ingestion.from_json(json.load(f))
                except (OSError, ValueError, TypeError, KeyError) as e:
                    log.error("Ignoring unreadable ingestion record %s: %s", path, e)
                    continue
                if self.directory(ing) != os.path.join(base, name):
                    log.error("Ignoring ingestion record %s: it names another owner or name", path)
                    continue
                found.append(ing)
        return found
