"""An ipywidgets form for Kafka ingestion: fill it in, see the plan, submit, then watch it live.

    from odh_hub import IngestForm
    IngestForm(topic="clicks", bucket="raw")          # the plan updates as you type; Start submits
    IngestForm.attach("clicks-raw")                   # watch (and pause/resume/stop/delete) an existing one

The view model is pure (plan_view, status_rows, enabled_actions below, unit-tested without a browser);
the widget only binds it to ipywidgets and to server_extension.ingest's client.
"""

from __future__ import annotations

import threading
from html import escape

from odh_spawner.quantities import format_bytes

from .client import OdhApiError
from .ingest import IngestClient, Ingestion, default_name, plan

FORMATS = ("jsonl", "parquet")
ACTIONS = ("pause", "resume", "stop", "delete")


def form_settings(values: dict) -> dict:
    """The ingest() arguments of a form's values (text fields trimmed, empty name → default). Pure."""
    topic, bucket = str(values.get("topic") or "").strip(), str(values.get("bucket") or "").strip()
    return {"topic": topic, "bucket": bucket, "prefix": str(values.get("prefix") or "").strip(),
            "format": values.get("format") or "jsonl", "flush_records": values.get("flush_records"),
            "flush_seconds": values.get("flush_seconds"),
            "partition_by": "hour" if values.get("partition_by_hour") else None,
            "name": str(values.get("name") or "").strip() or default_name(topic, bucket)}


def form_problem(settings: dict) -> str | None:
    """Why the platform would refuse these settings (the platform's own rules), or None. Pure."""
    from odh_spawner.ingest.spec import IngestError, build_spec, validate_name

    try:
        validate_name(settings["name"])
        build_spec({k: settings[k] for k in ("topic", "bucket", "prefix", "format", "flush_records", "flush_seconds",
                                             "partition_by")})
    except IngestError as e:
        return e.message
    return None


def plan_view(settings: dict) -> tuple[str | None, list[tuple[str, str]]]:
    """(problem, [(label, text)]): the plan shown before submitting, or why it cannot be submitted. Pure."""
    problem = form_problem(settings)
    if problem:
        return problem, []
    p = plan(**settings)
    return None, [("name", p["name"]), ("reads", p["reads"]), ("writes", f"{p['writes']} ({p['format']})"),
                  ("example key", p["example_key"]), ("flush", p["flush"]), ("offsets", p["offsets"])]


def lag_text(partitions: dict) -> str:
    """'p0: 0 · p1: 12' (unknown lag as '?'), by partition number. Pure."""
    if not partitions:
        return "-"
    items = sorted(partitions.items(), key=lambda kv: int(kv[0]))
    return " · ".join(f"p{p}: " + ("?" if v.get("lag") is None else f"{v['lag']:,}") for p, v in items)


def status_rows(s: dict) -> list[tuple[str, str]]:
    """The live status of an ingestion (the platform's description) as (label, text) rows. Pure."""
    rows = [("state", s.get("state", "?") + (f" (wanted: {s['desired']})" if s.get("desired") not in (None, s.get("state"))
                                              else "")),
            ("records", f"{s.get('records', 0):,} in {s.get('objects', 0):,} objects "
                        f"({s.get('records_per_second', 0):,.1f}/s)"),
            ("bytes", f"{format_bytes(s.get('bytes', 0))} ({format_bytes(s.get('bytes_per_second', 0))}/s)"),
            ("lag", f"{s.get('lag', 0):,} — {lag_text(s.get('partitions') or {})}"),
            ("last object", f"s3://{s['bucket']}/{s['last_object']}" if s.get("last_object") else "-")]
    if s.get("hint"):
        rows.append(("hint", s["hint"]))
    if s.get("last_error"):
        rows.append(("last error", s["last_error"]))
    return rows


def enabled_actions(state: str | None) -> dict[str, bool]:
    """Which buttons make sense in a state (None: no ingestion yet). Pure."""
    if state is None:
        return {a: False for a in ACTIONS}
    return {"pause": state not in ("paused", "stopped"), "resume": state in ("paused", "stopped"),
            "stop": state != "stopped", "delete": True}


def rows_html(rows: list[tuple[str, str]], cls: str = "odh-ingest-status") -> str:
    body = "".join(f"<tr data-field='{escape(k)}'><th style='text-align:left;padding-right:1em'>{escape(k)}</th>"
                   f"<td>{escape(v)}</td></tr>" for k, v in rows)
    return f"<table class='{cls}'>{body}</table>"


class IngestForm:
    """The form (topic, bucket, prefix, format, flush records/seconds, hourly folders) with its plan, a Start
    button, then the ingestion's live status with pause/resume/stop/delete. Display it as the last
    expression of a cell (it is the `.box` VBox)."""

    def __init__(self, topic: str = "", bucket: str = "", prefix: str = "", format: str = "jsonl",
                 flush_records: int = 10_000, flush_seconds: float = 60, partition_by: str | None = None,
                 name: str = "", client: IngestClient | None = None, refresh_seconds: float = 3.0):
        import ipywidgets as w

        self._client = client
        self.refresh_seconds = refresh_seconds
        self.ingestion: Ingestion | None = None
        self.fields = {
            "topic": w.Text(value=topic, description="Topic"),
            "bucket": w.Text(value=bucket, description="Bucket"),
            "prefix": w.Text(value=prefix, description="Prefix", placeholder="clicks/"),
            "format": w.Dropdown(options=FORMATS, value=format, description="Format"),
            "flush_records": w.BoundedIntText(value=flush_records, min=1, max=1_000_000, description="Flush at"),
            "flush_seconds": w.BoundedFloatText(value=flush_seconds, min=0.1, max=3600, description="or after s"),
            "partition_by_hour": w.Checkbox(value=partition_by == "hour", description="Folders by hour"),
            "name": w.Text(value=name, description="Name", placeholder="(from topic and bucket)"),
        }
        self.plan = w.HTML()
        self.submit = w.Button(description="Start ingestion", button_style="primary", icon="play")
        self.status = w.HTML()
        self.message = w.HTML()
        self.buttons = {a: w.Button(description=a.capitalize(), disabled=True) for a in ACTIONS}
        for f in self.fields.values():
            f.observe(lambda _: self.update_plan(), names="value")
        self.submit.on_click(lambda _: self.start())
        for a, b in self.buttons.items():
            b.on_click(lambda _, a=a: self.act(a))
        self.box = w.VBox([w.HBox([self.fields["topic"], self.fields["bucket"], self.fields["prefix"]]),
                           w.HBox([self.fields["format"], self.fields["flush_records"], self.fields["flush_seconds"]]),
                           w.HBox([self.fields["partition_by_hour"], self.fields["name"], self.submit]),
                           self.plan, self.status, w.HBox(list(self.buttons.values())), self.message])
        self._stop = threading.Event()
        self.update_plan()

    @property
    def client(self) -> IngestClient:
        if self._client is None:
            self._client = IngestClient()
        return self._client

    @classmethod
    def attach(cls, name: str, client: IngestClient | None = None, refresh_seconds: float = 3.0) -> "IngestForm":
        """Watch an existing ingestion (its settings fill the form)."""
        ing = Ingestion(name, client or IngestClient())
        s = ing.status()
        form = cls(s["topic"], s["bucket"], s["prefix"], s["format"], s["flush_records"], s["flush_seconds"],
                   s["partition_by"], name, client=ing.client, refresh_seconds=refresh_seconds)
        form._watch(ing, s)
        return form

    def _ipython_display_(self):
        from IPython.display import display

        display(self.box)

    def settings(self) -> dict:
        return form_settings({k: f.value for k, f in self.fields.items()})

    def update_plan(self) -> None:
        problem, rows = plan_view(self.settings())
        self.submit.disabled = bool(problem) or self.ingestion is not None
        self.plan.value = (f"<div class='odh-ingest-problem' style='color:var(--jp-error-color1)'>{escape(problem)}</div>"
                           if problem else "<b>Plan</b>" + rows_html(rows, "odh-ingest-plan"))

    def start(self) -> None:
        from .ingest import ingest

        try:
            ing = ingest(**self.settings(), show_plan=False, client=self.client)
        except OdhApiError as e:
            self.message.value = f"<b style='color:var(--jp-error-color1)'>Error {e.status}: {escape(e.message)}</b>"
            return
        self._watch(ing)

    def _watch(self, ing: Ingestion, first: dict | None = None) -> None:
        self.ingestion = ing
        self.submit.disabled = True
        self.message.value = ""
        self.show(first or ing.status())
        threading.Thread(target=self._poll, name=f"odh-ingest-{ing.name}", daemon=True).start()

    def show(self, s: dict) -> None:
        self.status.value = rows_html(status_rows(s))
        for a, on in enabled_actions(s.get("state")).items():
            self.buttons[a].disabled = not on

    def refresh(self) -> None:
        if self.ingestion is not None:
            try:
                self.show(self.ingestion.status())
            except OdhApiError as e:
                self.message.value = f"Error {e.status}: {escape(e.message)}"

    def _poll(self) -> None:
        while not self._stop.wait(self.refresh_seconds) and self.ingestion is not None:
            self.refresh()

    def act(self, action: str) -> None:
        if self.ingestion is None:
            return
        try:
            getattr(self.ingestion, action)()
        except OdhApiError as e:
            self.message.value = f"<b style='color:var(--jp-error-color1)'>Error {e.status}: {escape(e.message)}</b>"
            return
        if action == "delete":
            self._stop.set()
            self.message.value = f"Deleted {escape(self.ingestion.name)} (its objects stay in the bucket)."
            self.ingestion = None
            for b in self.buttons.values():
                b.disabled = True
            self.status.value = ""
            self.update_plan()
            return
        self.refresh()

    def close(self) -> None:
        """Stop watching (the ingestion itself goes on)."""
        self._stop.set()
