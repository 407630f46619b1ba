"""OdhStorage: hub-side settings for per-user object storage (traitlets, shared by both spawners)."""

from __future__ import annotations

import json
import os

from traitlets import Float, Int, Unicode, default
from traitlets.config import LoggingConfigurable

from odh_spawner.quantities import parse_memory
from odh_spawner.credentials.model import CredentialsUnavailable
from odh_spawner.credentials.rgw import RgwCredentialStore

_stores: dict[tuple, RgwCredentialStore] = {}
_keys: dict[str, dict] = {}  # admin keys by file, as last read


class OdhStorage(LoggingConfigurable):
    admin_endpoint = Unicode(
        "",
        config=True,
        help="""URL of the Ceph RGW the hub manages users on through the Admin Ops API, e.g.
        http://rgw.ceph.svc:8080. Empty disables per-user credentials.""",
    )
    s3_endpoint = Unicode(
        config=True,
        help="""S3 endpoint URL that notebook servers use (S3_ENDPOINT_URL). Defaults to admin_endpoint;
        set it when servers reach RGW under another name than the hub does.""",
    )

    @default("s3_endpoint")
    def _default_s3_endpoint(self):
        return self.admin_endpoint

    admin_keys_file = Unicode(
        os.environ.get("ODH_RGW_ADMIN_KEYS", ""),
        config=True,
        help="""JSON file with the platform's RGW admin keys {"access_key": ..., "secret_key": ...}, or a
        directory holding the files `access_key` and `secret_key` (on Kubernetes: a mounted Secret). The admin user needs caps users=*;buckets=*. Never logged.
        Defaults to $ODH_RGW_ADMIN_KEYS.""",
    )
    timeout = Float(
        10.0,
        config=True,
        help="Seconds one Admin Ops request may take; a spawn gives up on storage after 3x this, with a clear message.",
    )
    quota_max_size = Unicode(
        "",
        config=True,
        help="Per-user quota on stored bytes as a quantity ('50Gi'); empty for none. Applied when the user is created.",
    )
    quota_max_objects = Int(0, config=True, help="Per-user quota on the number of objects; 0 for none.")

    @property
    def enabled(self) -> bool:
        return bool(self.admin_endpoint)

    def store(self) -> RgwCredentialStore:
        """One credential store per configuration, shared by all spawners (per-user locks live in it)."""
        try:
            if self.admin_keys_file in _keys and not os.access(self.admin_keys_file, os.R_OK):
                keys = _keys[self.admin_keys_file]  # read as root before this service dropped root
            elif os.path.isdir(self.admin_keys_file):  # a mounted Secret: one file per key (Helm chart)
                keys = {}
                for key in ("access_key", "secret_key"):
                    with open(os.path.join(self.admin_keys_file, key), encoding="utf-8") as f:
                        keys[key] = f.read().strip()
            else:
                with open(self.admin_keys_file, encoding="utf-8") as f:
                    keys = json.load(f)
            access_key, secret_key = keys["access_key"], keys["secret_key"]
            _keys[self.admin_keys_file] = keys
        except (OSError, ValueError, KeyError, TypeError) as e:
            self.log.error("Cannot read RGW admin keys from %r: %s", self.admin_keys_file, type(e).__name__)
            raise CredentialsUnavailable("Object storage is not configured correctly on the hub; tell your "
                                         "platform admin.") from None
        max_kb = parse_memory(self.quota_max_size) // 1024 if self.quota_max_size else None
        ident = (self.admin_endpoint, self.s3_endpoint, access_key, self.timeout, max_kb, self.quota_max_objects)
        store = _stores.get(ident)
        if store is None:
            store = _stores[ident] = RgwCredentialStore(
                self.admin_endpoint, access_key, secret_key, s3_endpoint=self.s3_endpoint, timeout=self.timeout,
                quota_max_size_kb=max_kb, quota_max_objects=self.quota_max_objects or None, logger=self.log,
            )
        return store
