"""Your buckets, with your own keys: `BucketClient` (list, upload, download, delete) and the `BucketBrowser`
widget. Imported lazily (boto3 and ipywidgets load on first use)."""

from __future__ import annotations

from odh_hub import lazy_exports

_EXPORTS = {"BucketClient": ("server_extension.client", "BucketClient"),
            "BucketBrowser": ("server_extension.widgets", "BucketBrowser"),
            "OdhApiError": ("server_extension.client", "OdhApiError")}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(globals(), _EXPORTS)
