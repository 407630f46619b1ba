"""The admin view's overview, assembled from plain data (pure: no I/O, nothing running).

The admin handlers gather what each part of the platform says (the hub's users and their servers, Spark
clusters, deployments, ingestions, object-storage use) and `build_overview` turns it into one answer: every
user who has anything, sorted by name, each with their servers, Spark clusters, deployments, ingestions and
storage, every item with its last error (None when all is well). A part that could not be asked is named in
`errors` with its message, and its items are simply missing: the rest of the overview still shows.
"""

from __future__ import annotations

from odh_spawner.quantities import format_bytes

SECTIONS = ("servers", "spark", "deployments", "ingestions", "storage")


def server_item(name: str, model: dict, spawn_error: str | None = None) -> dict:
    """One server of a hub user's model (GET /hub/api/users, scope read:servers); `spawn_error`: the hub's
    message of its failed last start (a server that is not running), which makes its state "failed"."""
    pending = model.get("pending")
    ready = bool(model.get("ready"))
    state = ("stopping" if pending == "stop" else "starting" if pending else "running" if ready
             else "stopped" if model.get("stopped") else "starting")
    if spawn_error and state == "stopped":
        state = "failed"
    options = model.get("user_options") or {}
    return {
        "name": name,
        "state": state,
        "ready": ready,
        "profile": options.get("profile") if isinstance(options, dict) else None,
        "started": model.get("started"),
        "last_activity": model.get("last_activity"),
        "url": model.get("url"),
        "last_error": spawn_error if state == "failed" else None,
    }


def spark_item(server: str, status: dict | None, error: str | None = None) -> dict | None:
    """A server's Spark cluster from the Spark API's status (`{"enabled": false}`: none), or the error asking
    for it gave. None when the server has no cluster and nothing went wrong."""
    if error is None and not (status or {}).get("enabled"):
        return None
    status = status or {}
    return {
        "server": server,
        "state": status.get("state", "unknown") if error is None else "unknown",
        "workers_alive": int(status.get("workers_alive") or 0),
        "workers_requested": int(status.get("workers_requested") or 0),
        "applications": len(status.get("applications") or ()),
        "ui_url": status.get("ui_url") or None,
        "last_error": error,
    }


def deployment_item(d: dict) -> dict:
    """A deployment from its API listing (`Deployment.to_api()`, never with its key)."""
    return {
        "name": d["name"],
        "state": d.get("state"),
        "stage": d.get("stage"),
        "version": d.get("version"),
        "framework": d.get("framework"),
        "url": d.get("url"),
        "public": bool(d.get("public")),
        "restarts": int(d.get("restarts") or 0),
        "updated": d.get("updated"),
        "last_error": d.get("last_error") or None,
    }


def ingestion_item(i: dict) -> dict:
    """An ingestion from `IngestionManager.describe()`."""
    return {
        "name": i["name"],
        "state": i.get("state"),
        "desired": i.get("desired"),
        "topic": i.get("topic"),
        "bucket": i.get("bucket"),
        "records": int(i.get("records") or 0),
        "objects": int(i.get("objects") or 0),
        "lag": int(i.get("lag") or 0),
        "updated": i.get("updated"),
        "last_error": i.get("last_error") or None,
    }


def storage_item(usage: dict | None, error: str | None = None) -> dict:
    """A user's object-storage use (their RGW user's buckets' stats: {"bytes", "objects"}); None: nothing stored."""
    if error is not None:
        return {"bytes": None, "objects": None, "size": None, "last_error": error}
    if usage is None:
        return {"bytes": 0, "objects": 0, "size": format_bytes(0), "last_error": None}
    n = int(usage.get("bytes") or 0)
    return {"bytes": n, "objects": int(usage.get("objects") or 0), "size": format_bytes(n), "last_error": None}


def build_overview(*, hub_users: list[dict] | None, spark: dict[tuple[str, str], tuple[dict | None, str | None]],
                   deployments: list[dict], ingestions: list[dict] | None,
                   storage: dict[str, tuple[dict | None, str | None]] | None,
                   errors: dict[str, str] | None = None,
                   spawn_errors: dict[tuple[str, str], str] | None = None) -> dict:
    """The admin overview.

    hub_users: the hub's user models (name, admin, last_activity, servers), None when the hub did not answer;
    spark: (user, server) -> (status, error) for each running server; deployments: every deployment's API
    listing; ingestions: every ingestion's description, None when ingestion is not configured; storage: user
    -> (usage, error), None when per-user storage is not configured; errors: section -> message for a part
    that could not be asked at all; spawn_errors: (user, server) -> the hub's message of that server's failed
    last start. A server the hub lists as stopped is shown only with such an error (state "failed").
    """
    users: dict[str, dict] = {}

    def user(name: str) -> dict:
        if name not in users:
            users[name] = {"name": name, "admin": False, "last_activity": None, "servers": [], "spark": [],
                           "deployments": [], "ingestions": [], "storage": None}
        return users[name]

    for model in hub_users or ():
        u = user(model["name"])
        u["admin"] = bool(model.get("admin"))
        u["last_activity"] = model.get("last_activity")
        servers = model.get("servers") or {}
        items = [server_item(name, servers[name], (spawn_errors or {}).get((model["name"], name)))
                 for name in sorted(servers)]
        u["servers"] = [s for s in items if s["state"] != "stopped"]
    for (owner, server), (status, error) in sorted(spark.items()):
        item = spark_item(server, status, error)
        if item is not None:
            user(owner)["spark"].append(item)
    for d in sorted(deployments, key=lambda d: (d["owner"], d["name"])):
        user(d["owner"])["deployments"].append(deployment_item(d))
    for i in sorted(ingestions or (), key=lambda i: (i["owner"], i["name"])):
        user(i["owner"])["ingestions"].append(ingestion_item(i))
    for name, (usage, error) in (storage or {}).items():
        user(name)["storage"] = storage_item(usage, error)

    listed = [users[name] for name in sorted(users)]
    return {
        "users": listed,
        "enabled": {"ingestions": ingestions is not None, "storage": storage is not None},
        "totals": {
            "users": len(listed),
            "servers": sum(1 for u in listed for s in u["servers"] if s["state"] != "failed"),
            "spark": sum(len(u["spark"]) for u in listed),
            "deployments": sum(len(u["deployments"]) for u in listed),
            "ingestions": sum(len(u["ingestions"]) for u in listed),
            "storage_bytes": sum((u["storage"] or {}).get("bytes") or 0 for u in listed),
            "errors": sum(count_errors(u) for u in listed) + len(errors or {}),
        },
        "errors": dict(sorted((errors or {}).items())),
    }


def count_errors(u: dict) -> int:
    """How many of a user's items carry a last error."""
    items = [*u["servers"], *u["spark"], *u["deployments"], *u["ingestions"],
             *([u["storage"]] if u["storage"] else [])]
    return sum(1 for item in items if item.get("last_error"))
