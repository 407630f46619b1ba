"""The admin view's browser page: a static HTML page and its script (no framework), served by the admin
handlers. The page gets its JSON from <prefix>/api/admin/... with the OAuth session cookie and the page's XSRF
token (sent as X-XSRFToken on every call). Everything users control (names, errors) is put on the page with
textContent or setAttribute, never as HTML; the page's Content-Security-Policy allows only this script."""

from __future__ import annotations

from html import escape

CSP = ("default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1f2328; background: #f6f8fa; }
header { background: #24292f; color: #fff; padding: 12px 24px; display: flex; align-items: center; gap: 16px; }
header h1 { font-size: 18px; margin: 0; flex: 1; }
main { padding: 16px 24px; }
section { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; margin-bottom: 16px; padding: 8px 16px 12px; }
h2 { font-size: 15px; margin: 8px 0; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eaeef2; vertical-align: top; }
th { color: #57606a; font-weight: 600; }
td.error { color: #cf222e; max-width: 420px; word-break: break-word; }
.empty { color: #57606a; font-size: 13px; }
button { font: inherit; font-size: 12px; padding: 2px 10px; border-radius: 4px; border: 1px solid #d0d7de; background: #f6f8fa; cursor: pointer; }
button.danger { color: #cf222e; border-color: #cf222e55; }
button:disabled { opacity: .5; cursor: default; }
#odh-admin-status { min-height: 20px; font-size: 13px; margin-bottom: 8px; }
#odh-admin-status.error { color: #cf222e; }
#odh-admin-totals { font-size: 13px; color: #57606a; margin-bottom: 12px; }
#odh-admin-errors li { color: #cf222e; font-size: 13px; }
dialog { border: 1px solid #d0d7de; border-radius: 6px; padding: 16px 20px; max-width: 460px; }
dialog p { margin: 0 0 16px; }
dialog menu { display: flex; justify-content: flex-end; gap: 8px; margin: 0; padding: 0; }
.refused { max-width: 640px; margin: 48px auto; background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 24px; }
"""


def page(api_url: str, xsrf: str, user: str, hub_url: str) -> str:
    """The admin view for an admin (the data comes from the API once the page has loaded)."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>odh-hub admin view</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style></head>
<body>
<header><h1>odh-hub admin view</h1><span id="odh-admin-user">{escape(user)}</span>
<a href="{escape(hub_url, quote=True)}" style="color:#fff">Hub</a>
<button id="odh-admin-refresh" type="button">Refresh</button></header>
<main id="odh-admin" data-api="{escape(api_url, quote=True)}" data-xsrf="{escape(xsrf, quote=True)}">
<div id="odh-admin-status" role="status" aria-live="polite">Loading…</div>
<div id="odh-admin-totals"></div>
<ul id="odh-admin-errors"></ul>
<section id="odh-admin-users"><h2>Users</h2><div class="body"></div></section>
<section id="odh-admin-servers"><h2>Servers</h2><div class="body"></div></section>
<section id="odh-admin-spark"><h2>Spark clusters</h2><div class="body"></div></section>
<section id="odh-admin-deployments"><h2>Deployments</h2><div class="body"></div></section>
<section id="odh-admin-ingestions"><h2>Ingestions</h2><div class="body"></div></section>
<section id="odh-admin-storage"><h2>Storage</h2><div class="body"></div></section>
</main>
<dialog id="odh-admin-confirm"><p id="odh-admin-confirm-text"></p>
<menu><button id="odh-admin-confirm-cancel" type="button">Cancel</button>
<button id="odh-admin-confirm-ok" class="danger" type="button">Confirm</button></menu></dialog>
<script src="admin.js"></script>
</body></html>
"""


def refused(status: int, message: str, hub_url: str) -> str:
    """A page that says why the admin view is not shown (403 for a user who is not an admin, 503, ...)."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>odh-hub admin view: {status}</title>
<style>{_STYLE}</style></head>
<body><div class="refused" id="odh-admin-refused"><h1>{status}</h1>
<p id="odh-admin-message">{escape(message)}</p>
<p><a href="{escape(hub_url, quote=True)}">Back to the hub</a></p></div></body></html>
"""


SCRIPT = r"""
(function () {
  "use strict";
  var root = document.getElementById("odh-admin");
  var api = root.getAttribute("data-api").replace(/\/$/, "");
  var xsrf = root.getAttribute("data-xsrf");
  var statusLine = document.getElementById("odh-admin-status");
  var dialog = document.getElementById("odh-admin-confirm");
  var busy = false;

  // Elements from data: text goes in as text nodes, attributes through setAttribute; never HTML.
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    (children || []).forEach(function (c) {
      e.appendChild(c instanceof Node ? c : document.createTextNode(c === null || c === undefined ? "" : String(c)));
    });
    return e;
  }

  function say(message, isError) {
    statusLine.textContent = message;
    statusLine.className = isError ? "error" : "";
  }

  function formatBytes(n) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    var i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    var s = i === 0 ? String(Math.round(n)) : (Math.round(n * 10) / 10).toFixed(1).replace(/\.0$/, "");
    return s + " " + units[i];
  }

  function when(iso) {
    if (!iso) { return ""; }
    var d = new Date(iso);
    return isNaN(d.getTime()) ? String(iso) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  function call(method, path, body) {
    var headers = {"Accept": "application/json", "X-XSRFToken": xsrf};
    if (body !== undefined) { headers["Content-Type"] = "application/json"; }
    return fetch(api + path, {method: method, credentials: "same-origin", headers: headers,
                              body: body === undefined ? undefined : JSON.stringify(body)})
      .then(function (r) {
        return r.json().catch(function () { return null; }).then(function (data) {
          if (!r.ok) {
            throw new Error((data && data.message) || ("The platform service answered " + r.status + "."));
          }
          return data;
        });
      });
  }

  function enc(s) { return encodeURIComponent(s); }

  var ACTIONS = {
    "stop-server": {
      label: "Stop",
      question: function (u, n) { return "Stop " + u + "'s server" + (n ? " '" + n + "'" : "") + "? Its kernels stop and their unsaved state is lost."; },
      run: function (u, n) { return call("POST", "/users/" + enc(u) + "/server/stop", {server: n}); },
      done: function (u, n) { return u + "'s server" + (n ? " '" + n + "'" : "") + " is stopping."; },
      settled: function (o, u, n) { return !findServer(o, u, n); },
      after: function (u, n) { return u + "'s server" + (n ? " '" + n + "'" : "") + " is stopped."; }
    },
    "restart-spark": {
      label: "Restart",
      question: function (u, n) { return "Restart the Spark cluster of " + u + "'s server" + (n ? " '" + n + "'" : "") + "? Its running applications fail."; },
      run: function (u, n) { return call("POST", "/users/" + enc(u) + "/spark/restart", {server: n}); },
      done: function (u) { return u + "'s Spark cluster restarted."; }
    },
    "delete-deployment": {
      label: "Delete",
      question: function (u, n) { return "Delete " + u + "'s deployment '" + n + "'? Its endpoint stops answering and its API key stops working."; },
      run: function (u, n) { return call("DELETE", "/users/" + enc(u) + "/deployments/" + enc(n)); },
      done: function (u, n) { return u + "'s deployment '" + n + "' is deleted."; }
    },
    "stop-ingestion": {
      label: "Stop",
      question: function (u, n) { return "Stop " + u + "'s ingestion '" + n + "'? Its owner can resume it later."; },
      run: function (u, n) { return call("POST", "/users/" + enc(u) + "/ingestions/" + enc(n) + "/stop"); },
      done: function (u, n) { return u + "'s ingestion '" + n + "' is stopped."; }
    }
  };

  function findServer(overview, user, name) {
    var u = overview.users.filter(function (x) { return x.name === user; })[0];
    return u && u.servers.filter(function (s) { return s.name === name; })[0];
  }

  function actionButton(action, user, name, disabled) {
    var b = el("button", {type: "button", "class": "danger", "data-action": action, "data-user": user,
                          "data-name": name}, [ACTIONS[action].label]);
    b.disabled = !!disabled;
    b.addEventListener("click", function () { confirmThen(action, user, name); });
    return b;
  }

  function table(section, headers, rows, emptyText) {
    var body = document.querySelector("#" + section + " .body");
    body.textContent = "";
    if (!rows.length) { body.appendChild(el("p", {"class": "empty"}, [emptyText])); return; }
    var head = el("tr", {}, headers.map(function (h) { return el("th", {}, [h]); }));
    var t = el("table", {}, [el("thead", {}, [head]), el("tbody", {}, rows)]);
    body.appendChild(t);
  }

  function row(attrs, cells) {
    return el("tr", attrs, cells.map(function (c) {
      if (c && c.error !== undefined) { return el("td", {"class": "error"}, [c.error || ""]); }
      return el("td", {}, [c]);
    }));
  }

  function render(o) {
    var t = o.totals;
    function n(count, one, many) { return count + " " + (count === 1 ? one : many); }
    document.getElementById("odh-admin-totals").textContent =
      n(t.users, "user", "users") + ", " + n(t.servers, "server", "servers") + ", " +
      n(t.spark, "Spark cluster", "Spark clusters") + ", " + n(t.deployments, "deployment", "deployments") + ", " +
      n(t.ingestions, "ingestion", "ingestions") + ", " + formatBytes(t.storage_bytes) + " stored; " +
      n(t.errors, "error", "errors") + ".";
    var errs = document.getElementById("odh-admin-errors");
    errs.textContent = "";
    Object.keys(o.errors).forEach(function (k) { errs.appendChild(el("li", {}, [k + ": " + o.errors[k]])); });

    table("odh-admin-users", ["User", "Admin", "Servers", "Spark", "Deployments", "Ingestions", "Storage", "Last activity"],
      o.users.map(function (u) {
        return row({"data-user": u.name}, [u.name, u.admin ? "yes" : "", u.servers.length, u.spark.length,
          u.deployments.length, u.ingestions.length, u.storage && u.storage.size !== null ? u.storage.size : "",
          when(u.last_activity)]);
      }), "No users.");

    var servers = [], spark = [], deps = [], ings = [], storage = [];
    o.users.forEach(function (u) {
      u.servers.forEach(function (s) {
        servers.push(row({"data-user": u.name, "data-name": s.name, "data-state": s.state},
          [u.name, s.name || "(default)", s.state, s.profile || "", when(s.started), when(s.last_activity),
           {error: s.last_error},
           s.state === "failed" ? "" : actionButton("stop-server", u.name, s.name, s.state === "stopping")]));
      });
      u.spark.forEach(function (c) {
        spark.push(row({"data-user": u.name, "data-name": c.server, "data-state": c.state},
          [u.name, c.server || "(default)", c.state, c.workers_alive + " / " + c.workers_requested, c.applications,
           {error: c.last_error}, actionButton("restart-spark", u.name, c.server, false)]));
      });
      u.deployments.forEach(function (d) {
        deps.push(row({"data-user": u.name, "data-name": d.name, "data-state": d.state},
          [u.name, d.name, d.state + (d.stage ? " (" + d.stage + ")" : ""), d.version === null ? "" : d.version,
           d.framework || "", d.public ? "public" : "", when(d.updated), {error: d.last_error},
           actionButton("delete-deployment", u.name, d.name, false)]));
      });
      u.ingestions.forEach(function (i) {
        ings.push(row({"data-user": u.name, "data-name": i.name, "data-state": i.state},
          [u.name, i.name, i.state, (i.topic || "") + " \u2192 " + (i.bucket || ""), i.records, i.lag,
           {error: i.last_error}, actionButton("stop-ingestion", u.name, i.name, i.state === "stopped")]));
      });
      if (u.storage) {
        storage.push(row({"data-user": u.name}, [u.name, u.storage.size === null ? "" : u.storage.size,
          u.storage.objects === null ? "" : u.storage.objects, {error: u.storage.last_error}]));
      }
    });
    table("odh-admin-servers", ["User", "Server", "State", "Profile", "Started", "Last activity", "Last error", ""],
          servers, "No running servers, and none whose last start failed.");
    table("odh-admin-spark", ["User", "Server", "State", "Workers", "Applications", "Last error", ""], spark,
          "No Spark clusters.");
    table("odh-admin-deployments", ["User", "Name", "State", "Version", "Framework", "Access", "Updated", "Last error", ""],
          deps, "No deployments.");
    table("odh-admin-ingestions", ["User", "Name", "State", "Topic \u2192 bucket", "Records", "Lag", "Last error", ""], ings,
          o.enabled.ingestions ? "No ingestions." : "Kafka ingestion is not configured on this platform.");
    table("odh-admin-storage", ["User", "Stored", "Objects", "Last error"], storage,
          o.enabled.storage ? "No storage users." : "Per-user object storage is not configured on this platform.");
  }

  function refresh() {
    return call("GET", "/overview").then(function (o) {
      render(o);
      return o;
    });
  }

  function waitFor(test, tries) {
    return refresh().then(function (o) {
      if (test(o) || tries <= 0) { return test(o); }
      return new Promise(function (res) { setTimeout(res, 1000); }).then(function () { return waitFor(test, tries - 1); });
    });
  }

  var pending = null;
  function confirmThen(action, user, name) {
    pending = {action: action, user: user, name: name};
    document.getElementById("odh-admin-confirm-text").textContent = ACTIONS[action].question(user, name);
    dialog.showModal();
  }

  document.getElementById("odh-admin-confirm-cancel").addEventListener("click", function () {
    pending = null;
    dialog.close();
  });

  document.getElementById("odh-admin-confirm-ok").addEventListener("click", function () {
    var p = pending;
    pending = null;
    dialog.close();
    if (!p) { return; }
    var a = ACTIONS[p.action];
    busy = true;
    say("Working…", false);
    a.run(p.user, p.name).then(function () {
      if (!a.settled) {
        return refresh().then(function () { say(a.done(p.user, p.name), false); });
      }
      say(a.done(p.user, p.name), false);
      return waitFor(function (o) { return a.settled(o, p.user, p.name); }, 90).then(function (ok) {
        if (ok) { say(a.after(p.user, p.name), false); }
      });
    }).catch(function (e) {
      say(e.message, true);
    }).then(function () { busy = false; });
  });

  document.getElementById("odh-admin-refresh").addEventListener("click", function () {
    refresh().then(function () { say("Up to date.", false); }).catch(function (e) { say(e.message, true); });
  });

  refresh().then(function () { say("Up to date.", false); }).catch(function (e) { say(e.message, true); });
  setInterval(function () {
    if (!busy && !dialog.open && !document.hidden) { refresh().catch(function (e) { say(e.message, true); }); }
  }, 20000);
})();
"""
