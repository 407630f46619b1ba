"""Ingestion records on disk: `<root>/<state_dir_name(owner)>/<name>/ingestion.json` (odh_spawner.host.records: written
atomically, mode 0600, the platform's own); the worker's run directory `run/` beside it belongs to the owner's
system user (its status file and log). Directories are 0711: a worker passes through to its own run directory
only."""

from __future__ import annotations

import logging
import os

from odh_spawner.host.records import RecordStore
from odh_spawner.ingest.model import Ingestion

RECORD = "ingestion.json"
log = logging.getLogger("odh_spawner.ingest")


class IngestionStore(RecordStore):
    def __init__(self, root: str):
        super().__init__(root, RECORD, Ingestion.from_json, dir_mode=0o711, keep_dir_mode=True, log=log)

    def run_dir(self, ing: Ingestion) -> str:
        return os.path.join(self.directory(ing), "run")

    def load_all(self) -> list[Ingestion]:
        found = []
        for here, ing in self.walk():
            if self.directory(ing) != here:
                log.error("Ignoring ingestion record in %s: it names another owner or name", here)
                continue
            found.append(ing)
        return found
