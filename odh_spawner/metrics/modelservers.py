"""Users' model servers' own metrics, re-exposed by the platform service (docs/metrics.md, "Model servers").
Pure apart from prometheus_client's parser and types.

A model server runs its owner's code as its owner, so what its metrics endpoint says is the owner's to choose:
nothing of it is trusted. `screen` keeps only MLServer's own families (`FAMILIES`: the names and types a real
MLServer 1.7 emits; a family declared with another type, and every other name, `odh_*` included, is dropped),
only the sample names a family of that type has, only well-formed label names, and at most `max_series`
series per deployment (whole label sets: a histogram is kept with all its buckets or not at all). Every kept
sample gets the labels `owner` (the owner's slug) and `deployment` from the platform's record, whatever it
said; `job` and `instance` are dropped (they are Prometheus's), and a `model` label is set to the recorded
model name. Timestamps and exemplars are dropped. Help texts are ours.

`families` joins the screened samples of every deployment (one family per name, so the exposition is valid
whatever each server said) with the scrape's own `odh_model_server_scrape_*` families.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

# MLServer's own families (MLServer 1.7.1, parallel_workers 0: its data plane counters, starlette-exporter's
# REST metrics, py-grpc-prometheus's gRPC metrics, prometheus_client's process collector) and their types
FAMILIES = {
    "model_infer_request_success": "counter",
    "model_infer_request_failure": "counter",
    "model_infer_request_duration": "summary",
    "rest_server_requests": "counter",
    "rest_server_requests_in_progress": "gauge",
    "rest_server_request_duration_seconds": "histogram",
    "grpc_server_started": "counter",
    "grpc_server_handled": "counter",
    "grpc_server_msg_received": "counter",
    "grpc_server_msg_sent": "counter",
    "grpc_server_handling_seconds": "histogram",
    "grpc_server_handled_latency_seconds": "histogram",
    "process_cpu_seconds": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_virtual_memory_bytes": "gauge",
    "process_open_fds": "gauge",
    "process_max_fds": "gauge",
    "process_start_time_seconds": "gauge",
}
# the sample names a family of each type has (suffixes of the family's name); `_created` is left out
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "summary": ("", "_count", "_sum"),
            "histogram": ("_bucket", "_count", "_sum")}
GROUPING = {"le", "quantile"}  # labels that tell one series' samples apart: not a series of their own
OURS = ("owner", "deployment")  # set from the platform's record on every sample
DROPPED_LABELS = {"job", "instance"}  # Prometheus's target labels
MODEL_LABELS = ("model", "model_name")  # set to the recorded model name when present
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
MAX_LABELS = 16
MAX_VALUE = 256  # characters of a label value


@dataclass
class Screened:
    """What `screen` kept of one model server's exposition: (family name, sample name, labels, value) rows in
    exposition order, and how many samples it dropped (outside the allowlist, malformed, over the cap)."""
    rows: list = field(default_factory=list)
    dropped: int = 0


def _sample_allowed(family: str, kind: str, sample_name: str) -> bool:
    return any(sample_name == family + s for s in SUFFIXES[kind])


def _labels(labels: dict, owner: str, deployment: str, model_name: str) -> dict | None:
    """The labels a kept sample is exposed with, or None when it is dropped (a label name that is not
    Prometheus's plain form, too many labels, a value too long). Pure."""
    if len(labels) > MAX_LABELS:
        return None
    out = {}
    for k, v in labels.items():
        if not isinstance(k, str) or not LABEL_NAME.match(k) or k.startswith("__"):
            return None
        if not isinstance(v, str) or len(v) > MAX_VALUE:
            return None
        if k in DROPPED_LABELS or k in OURS:
            continue
        out[k] = model_name if k in MODEL_LABELS else v
    out["owner"], out["deployment"] = owner, deployment
    return out


def screen(text: str, owner: str, deployment: str, model_name: str, max_series: int) -> Screened:
    """Screen one model server's exposition (`text`, Prometheus text format) for the deployment `deployment` of
    owner slug `owner`. Raises ValueError when the text does not parse. Pure."""
    out = Screened()
    seen: set = set()  # (sample name, labels): each once (an overridden label must not make a duplicate)
    series: set = set()  # (family, labels less le/quantile): what the cap counts
    full = False
    for fam in text_string_to_metric_families(text):
        kind = FAMILIES.get(fam.name)
        if kind is None or fam.type != kind or full:
            out.dropped += len(fam.samples)
            continue
        groups: dict[tuple, list] = {}
        for s in fam.samples:
            labels = _labels(s.labels, owner, deployment, model_name) if _sample_allowed(fam.name, kind, s.name) \
                else None
            value = float(s.value) if isinstance(s.value, (int, float)) else math.nan
            if labels is None or (s.name, frozenset(labels.items())) in seen:
                out.dropped += 1
                continue
            seen.add((s.name, frozenset(labels.items())))
            key = (fam.name, frozenset((k, v) for k, v in labels.items() if k not in GROUPING))
            groups.setdefault(key, []).append((fam.name, s.name, labels, value))
        for key, rows in groups.items():
            if full or (key not in series and len(series) >= max_series):
                full = True
                out.dropped += len(rows)
                continue
            series.add(key)
            out.rows += rows
    return out


def help_text(name: str) -> str:
    return f"MLServer's {name} of the deployment's model server, re-exposed by the platform service."


@dataclass
class Scrape:
    """One deployment's model server scrape: whose, whether it answered (and its screened samples), how long
    it took."""
    owner: str  # slug
    deployment: str
    up: bool
    seconds: float
    screened: Screened | None = None
    reason: str = ""  # why not up (logged, never exposed: it may quote the server)


def families(scrapes: list[Scrape]) -> list[Metric]:
    """The metric families of one scrape of every model server: MLServer's families (each once, the samples of
    every deployment in it), then `odh_model_server_scrape_up`, `..._duration_seconds` and
    `..._samples_dropped` per deployment. Pure."""
    by_name: dict[str, Metric] = {}
    for sc in scrapes:
        if not sc.up or sc.screened is None:
            continue
        for fam, sample, labels, value in sc.screened.rows:
            m = by_name.get(fam)
            if m is None:
                m = by_name[fam] = Metric(fam, help_text(fam), FAMILIES[fam])
            m.add_sample(sample, labels, value)
    up = GaugeMetricFamily("odh_model_server_scrape_up",
                           "1 when the platform read the model server's metrics in this scrape.",
                           labels=list(OURS))
    took = GaugeMetricFamily("odh_model_server_scrape_duration_seconds",
                             "Seconds reading the model server's metrics took.", labels=list(OURS))
    dropped = GaugeMetricFamily("odh_model_server_scrape_samples_dropped",
                                "Samples of the model server's metrics not re-exposed (not MLServer's own, "
                                "malformed, or over the series cap).", labels=list(OURS))
    for sc in scrapes:
        up.add_metric([sc.owner, sc.deployment], 1.0 if sc.up else 0.0)
        took.add_metric([sc.owner, sc.deployment], sc.seconds)
        if sc.up and sc.screened is not None:
            dropped.add_metric([sc.owner, sc.deployment], float(sc.screened.dropped))
    return [by_name[n] for n in FAMILIES if n in by_name] + [up, took, dropped]


class FamiliesCollector:
    """A collector serving a fixed list of families (one scrape's), for generate_latest."""

    def __init__(self, fams: list[Metric]):
        self.fams = fams

    def collect(self):
        return iter(self.fams)
