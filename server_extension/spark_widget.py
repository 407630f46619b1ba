"""An ipywidgets panel for the notebook's Spark cluster.

    from odh_hub import SparkClusterWidget
    SparkClusterWidget()

Shows the master URL, workers alive/requested, cores and memory in use, running applications and a link to
the Spark UI; scales (within your limits) and restarts the cluster. Errors are shown as text in the panel.
"""

from __future__ import annotations

import functools
from html import escape

import ipywidgets as w
import requests

from odh_spawner.quantities import format_bytes

from .client import OdhApiError
from .spark_client import SparkClient


def _guard(fn):
    """Run an action; an API or connection error becomes the panel's status text (and None is returned)."""

    @functools.wraps(fn)
    def run(self, *args, **kwargs):
        self.message.value = ""
        try:
            return fn(self, *args, **kwargs)
        except OdhApiError as e:
            self.message.value = f"<span style='color:#b00'>Error {e.status}: {escape(e.message)}</span>"
        except requests.RequestException as e:
            self.message.value = f"<span style='color:#b00'>Error: the server did not answer ({escape(type(e).__name__)})</span>"
        return None

    return run


class SparkClusterWidget(w.VBox):
    def __init__(self, client: SparkClient | None = None, **kwargs):
        self.client = client or SparkClient()
        self.last: dict | None = None
        self.summary = w.HTML()
        self.applications = w.HTML()
        self.link = w.HTML()
        self.workers = w.BoundedIntText(value=1, min=1, max=1, description="Workers", layout=w.Layout(width="180px"))
        self.message = w.HTML()
        self.buttons = {}
        for name, label, action in (("scale", "Scale", lambda: self.scale()), ("restart", "Restart", self.restart),
                                    ("refresh", "Refresh", self.refresh)):
            self.buttons[name] = w.Button(description=label)
            self.buttons[name].on_click(lambda _button, action=action: action())
        super().__init__([
            self.summary, self.link, self.applications,
            w.HBox([self.workers, self.buttons["scale"], self.buttons["restart"], self.buttons["refresh"]]),
            self.message,
        ], **kwargs)
        self.refresh()

    @_guard
    def refresh(self) -> dict:
        return self.show(self.client.status())

    @_guard
    def scale(self, workers: int | None = None) -> dict:
        """Scale to `workers` (default: the number in the box); waits until new workers are ALIVE."""
        n = self.workers.value if workers is None else workers
        self.message.value = f"Scaling to {n} workers…"
        status = self.show(self.client.scale(n))
        alive = status.get("workers_alive", 0)
        self.message.value = f"Scaled to {alive} worker{'' if alive == 1 else 's'}."
        return status

    @_guard
    def restart(self) -> dict:
        self.message.value = "Restarting the Spark cluster…"
        status = self.show(self.client.restart())
        self.message.value = "Restarted."
        return status

    def show(self, s: dict) -> dict:
        self.last = s
        enabled = bool(s.get("enabled"))
        for button in ("scale", "restart"):
            self.buttons[button].disabled = not enabled
        self.workers.disabled = not enabled
        if not enabled:
            self.summary.value = ("<b>No Spark cluster</b> on this server. Start your server with a profile that "
                                  "offers Spark to get one.")
            self.link.value = self.applications.value = ""
            return s
        self.workers.max = max(1, int(s.get("max_workers") or 1), int(s.get("workers_requested") or 1))
        self.workers.value = max(1, int(s.get("workers_requested") or 1))
        rows = [
            ("State", s.get("state", "")),
            ("Master", f"<code>{escape(s.get('master_url', ''))}</code>"),
            ("Workers", (f"{s.get('workers_alive', 0)} alive / {s.get('workers_requested', 0)} requested "
                         f"(at most {s.get('max_workers', '?')})")),
            ("Cores", f"{s.get('cores_used', 0)} of {s.get('cores', 0)} in use"),
            ("Memory", f"{format_bytes(s.get('memory_used_mb', 0) * 2**20)} of "
                       f"{format_bytes(s.get('memory_mb', 0) * 2**20)} in use"),
        ]
        self.summary.value = "<table>" + "".join(
            f"<tr><th style='text-align:left;padding-right:1em'>{k}</th><td>{v if k == 'Master' else escape(str(v))}"
            "</td></tr>" for k, v in rows) + "</table>"
        ui = s.get("ui_url") or ""
        self.link.value = (f"<a href='{escape(ui, quote=True)}' target='_blank' rel='noopener noreferrer'>"
                           "Open the Spark UI</a>") if ui else ""
        apps = s.get("applications") or []
        if apps:
            self.applications.value = "<b>Applications</b><table>" + "".join(
                f"<tr><td>{escape(a.get('name', ''))}</td><td><code>{escape(a.get('id', ''))}</code></td>"
                f"<td>{escape(a.get('state', ''))}</td><td>{int(a.get('cores') or 0)} cores</td></tr>"
                for a in apps) + "</table>"
        else:
            self.applications.value = "<i>No running applications.</i>"
        return s
