"""An ipywidgets bucket browser for notebook cells.

    from odh_hub import BucketBrowser
    BucketBrowser()

Browse buckets and folders a page at a time, upload (in parts, with a progress bar), download to the
working directory, delete with confirmation, copy the s3:// path, and get a read snippet.
"""

from __future__ import annotations

import io
import os

import ipywidgets as w

from odh_spawner.quantities import format_bytes

from .client import BucketClient, OdhApiError

SNIPPET = """import os, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT_URL"])
obj = s3.get_object(Bucket={bucket!r}, Key={key!r})
data = obj["Body"].read()
"""


class BucketBrowser(w.VBox):
    def __init__(self, client: BucketClient | None = None, page_size: int = 200, **kwargs):
        self.client = client or BucketClient()
        self.page_size = page_size
        self.bucket: str | None = None
        self.prefix = ""
        self.next_token: str | None = None
        self.entries: dict[str, dict] = {}  # option label -> {"type": folder|object|bucket, ...}

        self.location = w.HTML()
        self.listing = w.Select(options=[], rows=14, layout=w.Layout(width="100%"))
        self.status = w.HTML()
        self.progress = w.IntProgress(min=0, max=100, value=0, description="", layout=w.Layout(visibility="hidden"))
        self.path = w.Text(description="s3 path", layout=w.Layout(width="100%"), disabled=False)
        self.snippet = w.Textarea(layout=w.Layout(width="100%", height="90px"))
        self.new_name = w.Text(placeholder="new bucket or folder name")
        self.uploader = w.FileUpload(description="Upload", multiple=True)
        self.confirm = w.Checkbox(value=False, description="yes, delete")
        actions = {
            "up": ("Up", self.up), "open": ("Open", self._open_selected), "more": ("Load more", self.load_more),
            "refresh": ("Refresh", self.refresh), "download": ("Download", self.download),
            "delete": ("Delete", self.delete), "copy": ("Copy path", self.copy_path),
            "snippet": ("Snippet", self.make_snippet), "new_bucket": ("New bucket", lambda: self.create("bucket")),
            "new_folder": ("New folder", lambda: self.create("folder")),
        }
        buttons = {}
        for name, (label, action) in actions.items():
            buttons[name] = w.Button(description=label)
            buttons[name].on_click(lambda _button, action=action: action())
        self.buttons = buttons
        self.uploader.observe(self._on_upload, names="value")
        self.listing.observe(self._on_select, names="value")
        super().__init__([
            self.location,
            w.HBox([buttons[k] for k in ("up", "open", "more", "refresh")]),
            self.listing,
            w.HBox([buttons[k] for k in ("download", "copy", "snippet", "delete")] + [self.confirm]),
            w.HBox([self.new_name, buttons["new_bucket"], buttons["new_folder"], self.uploader]),
            self.progress, self.path, self.snippet, self.status,
        ], **kwargs)
        self.refresh()

    # -- navigation ----------------------------------------------------------------------------
    def _guard(fn):  # noqa: N805 - decorator inside the class
        def run(self, *args, **kwargs):
            try:
                self.status.value = ""
                return fn(self, *args, **kwargs)
            except OdhApiError as e:
                self.status.value = f"<span style='color:#b00'>Error {e.status}: {_esc(e.message)}</span>"

        return run

    @_guard
    def refresh(self):
        self.entries, self.next_token = {}, None
        if self.bucket is None:
            self.location.value = "<b>Buckets</b>"
            for b in self.client.list_buckets():
                self.entries[f"🪣 {b['name']}"] = {"type": "bucket", "name": b["name"]}
        else:
            self.location.value = f"<b>s3://{_esc(self.bucket)}/{_esc(self.prefix)}</b>"
            self._load_page()
        self._show()

    def _load_page(self):
        page = self.client.list_page(self.bucket, self.prefix, "/", self.page_size, self.next_token)
        for f in page.folders:
            self.entries[f"📁 {f['name']}/"] = {"type": "folder", **f}
        for o in page.objects:
            self.entries[f"{o['name']}  ({format_bytes(o['size'])})"] = {"type": "object", **o}
        self.next_token = page.next_token

    def _show(self):
        self.listing.options = list(self.entries)
        self.buttons["more"].disabled = self.next_token is None

    @_guard
    def open_entry(self, label: str):
        entry = self.entries[label]
        if entry["type"] == "bucket":
            self.bucket, self.prefix = entry["name"], ""
        elif entry["type"] == "folder":
            self.prefix = entry["prefix"]
        else:
            return
        self.refresh()

    @_guard
    def load_more(self):
        if self.next_token:
            self._load_page()
            self._show()

    def up(self):
        if self.bucket is None:
            return
        if self.prefix:
            parts = self.prefix.rstrip("/").split("/")[:-1]
            self.prefix = "/".join(parts) + "/" if parts else ""
        else:
            self.bucket = None
        self.refresh()

    def selected(self) -> dict | None:
        return self.entries.get(self.listing.value) if self.listing.value else None

    # -- actions -------------------------------------------------------------------------------
    @_guard
    def download(self, directory: str = ".") -> str | None:
        entry = self.selected()
        if not entry or entry["type"] != "object":
            self.status.value = "Select an object to download."
            return None
        dest = os.path.join(directory, entry["name"].rsplit("/", 1)[-1])
        self.client.download(self.bucket, entry["key"], dest, progress=self._progress)
        self.status.value = f"Downloaded to {_esc(dest)}"
        return dest

    @_guard
    def delete(self) -> int:
        entry = self.selected()
        if not entry or entry["type"] not in ("object", "folder"):
            self.status.value = "Select an object or folder to delete."
            return 0
        if not self.confirm.value:
            self.status.value = "Tick 'yes, delete' to confirm, then press Delete again."
            return 0
        if entry["type"] == "object":
            n = self.client.delete(self.bucket, entry["key"])
        else:
            n = self.client.delete_prefix(self.bucket, entry["prefix"], confirm=True)
        self.confirm.value = False
        self.refresh()
        self.status.value = f"Deleted {n} object(s)."
        return n

    def copy_path(self) -> str:
        entry = self.selected()
        if entry is None:
            value = f"s3://{self.bucket}/{self.prefix}" if self.bucket else ""
        else:
            value = entry.get("path") or f"s3://{entry.get('name', '')}/"
        self.path.value = value
        return value

    def make_snippet(self) -> str:
        entry = self.selected()
        if not entry or entry["type"] != "object":
            self.status.value = "Select an object for a snippet."
            return ""
        self.snippet.value = SNIPPET.format(bucket=self.bucket, key=entry["key"])
        return self.snippet.value

    @_guard
    def create(self, kind: str):
        name = self.new_name.value.strip()
        if not name:
            self.status.value = "Type a name first."
            return
        if kind == "bucket":
            self.client.create_bucket(name)
        elif self.bucket is None:
            self.status.value = "Open a bucket first."
            return
        else:
            self.client.create_folder(self.bucket, self.prefix + name)
        self.new_name.value = ""
        self.refresh()

    @_guard
    def upload_bytes(self, name: str, data: bytes):
        if self.bucket is None:
            self.status.value = "Open a bucket first."
            return
        self.client.upload(self.bucket, self.prefix + name, io.BytesIO(data), size=len(data), progress=self._progress)
        self.status.value = f"Uploaded {_esc(name)}"

    def _progress(self, done: int, total: int):
        self.progress.layout.visibility = "visible"
        self.progress.value = int(100 * done / total) if total else 100

    # -- widget events -------------------------------------------------------------------------
    def _on_select(self, change):
        self.copy_path()

    def _open_selected(self):
        if self.listing.value:
            self.open_entry(self.listing.value)

    def _on_upload(self, change):
        for item in change["new"] or ():
            self.upload_bytes(item["name"], bytes(item["content"]))
        if self.bucket is not None:
            self.refresh()


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
