"""ipywidgets for deployments: a Deploy button under a trained model, and a list of your deployments.

    from odh_hub import DeployButton, DeploymentsList
    DeployButton(model, name="churn", sample=X_test[:1])
    DeploymentsList()
"""

from __future__ import annotations

from html import escape

import ipywidgets as w

from .client import OdhApiError
from .deploy import STAGES, DeployClient, DeployError, redacted_curl

ICON = {"pending": "○", "active": "◐", "done": "●", "failed": "✕"}


def stages_html(current: str | None, failed: bool = False) -> str:
    """The stage line: done stages filled, the current one half, a failure crossed. Pure."""
    parts, reached = [], current is None
    for stage in STAGES:
        if current is None:
            state = "pending"
        elif stage == current:
            state = "failed" if failed else ("done" if stage == "ready" else "active")
            reached = True
        else:
            state = "pending" if reached else "done"
        parts.append(f"<span class='odh-stage' data-stage='{stage}' data-state='{state}'>{ICON[state]} {stage}</span>")
    return " → ".join(parts)


class DeployButton(w.VBox):
    """Deploy `model` in one click; then redeploy, roll back, test or delete the deployment."""

    def __init__(self, model, name: str, sample=None, client: DeployClient | None = None, **kwargs):
        self.model, self.sample = model, sample
        self.client = client or DeployClient()
        self.name = w.Text(value=name, description="Name", layout=w.Layout(width="300px"))
        self.button = w.Button(description="Deploy", button_style="primary", icon="rocket")
        self.stages = w.HTML(stages_html(None))
        self.result = w.HTML()
        self.actions = {a: w.Button(description=a.capitalize(), disabled=True)
                        for a in ("redeploy", "rollback", "test", "delete")}
        self.button.on_click(lambda _: self.deploy())
        for action, b in self.actions.items():
            b.on_click(lambda _, a=action: getattr(self, a)())
        self.deployment = None
        super().__init__([w.HBox([self.name, self.button]), self.stages, self.result,
                          w.HBox(list(self.actions.values()))], **kwargs)

    def _progress(self, stage: str, info: dict | None) -> None:
        self.stages.value = stages_html(stage, failed=stage == "failed")

    def _show(self, d) -> None:
        i = d.info
        test = i.get("test_prediction") or {}
        rows = [("URL", f"<code>{escape(i.get('infer_url') or '-')}</code>"),
                ("version", f"v{i['version']} of {len(i['versions'])}"), ("state", escape(i["state"]))]
        if test.get("outputs"):
            rows.append(("test prediction", escape(f"{test['inputs']} → {test['outputs'][0]['data']}")))
        rows.append(("access", "public: anyone may call it" if i.get("public") else
                      "its API key (<code>.deployment.api_key</code>, not shown here) or your hub token"))
        if i.get("example_request"):
            rows.append(("example", f"<pre>{escape(redacted_curl(i))}</pre>"))
        self.result.value = "<table>" + "".join(f"<tr><th style='text-align:left;padding-right:1em'>{k}</th>"
                                                f"<td>{v}</td></tr>" for k, v in rows) + "</table>"
        self.actions["rollback"].disabled = not any(v["state"] == "Retired" for v in i["versions"])
        for a in ("redeploy", "test", "delete"):
            self.actions[a].disabled = False

    def _run(self, fn) -> None:
        self.button.disabled = True
        try:
            d = fn()
            if d is not None:
                self.deployment = d
                self._show(d)
        except DeployError as e:
            self._progress("failed", None)
            tail = "<pre>" + escape("\n".join(e.log_tail[-15:])) + "</pre>" if e.log_tail else ""
            self.result.value = f"<b style='color:var(--jp-error-color1)'>Error: {escape(e.message)}</b>{tail}"
        except OdhApiError as e:
            self.result.value = f"<b style='color:var(--jp-error-color1)'>Error {e.status}: {escape(e.message)}</b>"
        finally:
            self.button.disabled = False

    def deploy(self) -> None:
        self._run(lambda: self.client.deploy(self.model, self.name.value, sample=self.sample,
                                             progress=self._progress))

    def redeploy(self, model=None) -> None:
        self.model = model if model is not None else self.model
        self._run(lambda: self.client.deploy(self.model, self.name.value, sample=self.sample, new_version=True,
                                             progress=self._progress))

    def rollback(self) -> None:
        self._run(lambda: self.client.rollback(self.name.value))

    def test(self) -> None:
        def run():
            out = self.client.test(self.name.value)
            self.result.value += f"<div>test: {escape(str(out['inputs']))} → {escape(str(out['outputs'][0]['data']))} " \
                                 f"({out['elapsed_ms']:.1f} ms)</div>"
        self._run(run)

    def delete(self) -> None:
        def run():
            self.client.delete(self.name.value)
            self.deployment = None
            self.stages.value = stages_html(None)
            self.result.value = f"Deleted {escape(self.name.value)}."
            for b in self.actions.values():
                b.disabled = True
        self._run(run)


class DeploymentsList(w.VBox):
    """Your deployments: state, version, URL; select one to roll back or delete it."""

    def __init__(self, client: DeployClient | None = None, **kwargs):
        self.client = client or DeployClient()
        self.table = w.HTML()
        self.select = w.Dropdown(description="Deployment", options=[])
        self.status = w.HTML()
        buttons = {a: w.Button(description=a.capitalize()) for a in ("refresh", "rollback", "delete",
                                                                     "rotate key", "public on/off")}
        buttons["refresh"].on_click(lambda _: self.refresh())
        buttons["rotate key"].on_click(lambda _: self._act(self.client.rotate_key))
        buttons["public on/off"].on_click(lambda _: self._act(self.toggle_public))
        buttons["rollback"].on_click(lambda _: self._act(lambda n: self.client.rollback(n)))
        buttons["delete"].on_click(lambda _: self._act(self.client.delete))
        super().__init__([self.table, w.HBox([self.select, *buttons.values()]), self.status], **kwargs)
        self.refresh()

    def refresh(self) -> None:
        try:
            items = self.client.list()
        except OdhApiError as e:
            self.status.value = f"Error {e.status}: {escape(e.message)}"
            return
        head = ("<tr><th>name</th><th>state</th><th>version</th><th>URL</th><th>access</th>"
                "<th>last error</th></tr>")
        rows = "".join(
            f"<tr data-name='{escape(d.name)}'><td>{escape(d.name)}</td><td>{escape(d.state)}</td>"
            f"<td>v{d.version}/{len(d.versions)}</td><td><code>{escape(d.infer_url or '-')}</code></td>"
            f"<td data-public='{str(bool(d.info.get('public'))).lower()}'>"
            f"{'public' if d.info.get('public') else 'key or token'}</td>"
            f"<td>{escape(d.last_error or '')}</td></tr>" for d in items)
        self.table.value = f"<table>{head}{rows}</table>" if items else "<i>No deployments yet.</i>"
        self.select.options = [d.name for d in items]

    def toggle_public(self, name: str) -> None:
        self.client.set_public(name, not self.client.get(name).info.get("public", False))

    def _act(self, fn) -> None:
        if not self.select.value:
            return
        try:
            fn(self.select.value)
            self.status.value = "Done."
        except OdhApiError as e:
            self.status.value = f"Error {e.status}: {escape(e.message)}"
        self.refresh()
