"""Records the platform keeps on disk, one JSON file per (owner, name) under
`<root>/<naming.state_dir_name(owner)>/<name>/<record file>`: written atomically (0600, never through a link),
found again at start-up. The deployment and ingestion stores are this with their own record type.

A record may hold secrets (a deployment's API key): the root is the platform's private state, and nothing
here logs a record's content."""

from __future__ import annotations

import json
import logging
import os
import shutil
from typing import Any, Callable, Iterator

from odh_spawner.naming import state_dir_name


class RecordStore:
    """`record`: the file name of one record; `load`: the record type's `from_json`; `dir_mode`: of new owner and
    record directories; `keep_dir_mode`: set it again on every save (0711 where an owner's process must always
    pass through to a directory below; otherwise a backend may have opened them up on purpose)."""

    def __init__(self, root: str, record: str, load: Callable[[dict], Any], dir_mode: int = 0o700,
                 keep_dir_mode: bool = False, log: logging.Logger | None = None):
        self.root = os.path.abspath(root)
        self.record, self._load, self.dir_mode, self.keep_dir_mode = record, load, dir_mode, keep_dir_mode
        self.log = log or logging.getLogger("odh_spawner.host.records")
        os.makedirs(self.root, mode=0o711, exist_ok=True)
        os.chmod(self.root, 0o711)

    def owner_dir(self, owner: str) -> str:
        return os.path.join(self.root, state_dir_name(owner))

    def directory(self, item) -> str:
        return os.path.join(self.owner_dir(item.owner), item.name)

    def save(self, item) -> None:
        d = self.directory(item)
        os.makedirs(d, mode=self.dir_mode, exist_ok=True)
        if self.keep_dir_mode:
            for path in (os.path.dirname(d), d):
                os.chmod(path, self.dir_mode)
        path = os.path.join(d, self.record)
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(item.to_json(), f, indent=1)
        os.replace(tmp, path)

    def remove(self, item) -> None:
        shutil.rmtree(self.directory(item), ignore_errors=True)

    def walk(self) -> Iterator[tuple[str, Any]]:
        """(directory it was found in, record) for every readable record below the root; unreadable ones are
        logged (by path) and skipped."""
        for owner_dir in sorted(os.listdir(self.root)):
            base = os.path.join(self.root, owner_dir)
            if not os.path.isdir(base):
                continue
            for name in sorted(os.listdir(base)):
                path = os.path.join(base, name, self.record)
                if not os.path.exists(path):
                    continue
                try:
                    with open(path, encoding="utf-8") as f:
                        item = self._load(json.load(f))
                except (OSError, ValueError, TypeError, KeyError) as e:
                    self.log.error("Ignoring unreadable record %s: %s", path, e)
                    continue
                yield os.path.join(base, name), item
