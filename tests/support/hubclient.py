"""A user of the hub over HTTP: log in through the form, spawn through the form or the REST API.

Every answer (and every progress event) is recorded for the end-of-run secret scan (tests.support.secretscan),
and the session's API token is registered as a secret."""

from __future__ import annotations

import json
import re
import time

import requests

from tests.support import secretscan


class HubUserSession:
    def __init__(self, hub_url: str, name: str, password: str):
        self.url = hub_url.rstrip("/")
        self.name = name
        self.s = requests.Session()
        self.s.hooks["response"].append(_record)
        r = self.s.get(f"{self.url}/hub/login")
        r.raise_for_status()
        r = self.s.post(f"{self.url}/hub/login", data={"username": name, "password": password, "_xsrf": self.xsrf},
                        allow_redirects=False)
        if r.status_code != 302:
            raise AssertionError(f"login as {name} failed: {r.status_code}")
        self.token = self._token()
        secretscan.register_secret(self.token, "hub-token")

    @property
    def xsrf(self) -> str:
        """The hub's XSRF cookie (a user's server sets its own, with its own path)."""
        for cookie in self.s.cookies:
            if cookie.name == "_xsrf" and cookie.path.startswith("/hub"):
                return cookie.value
        return next((c.value for c in self.s.cookies if c.name == "_xsrf"), "")

    def _token(self) -> str:
        r = self.s.post(f"{self.url}/hub/api/users/{self.name}/tokens", json={"note": "tests", "expires_in": 3600},
                        headers={"X-XSRFToken": self.xsrf})
        r.raise_for_status()
        return r.json()["token"]

    @property
    def auth(self) -> dict:
        return {"Authorization": f"token {self.token}"}

    def api(self, method: str, path: str, **kw) -> requests.Response:
        return requests.request(method, f"{self.url}/hub/api{path}", headers=self.auth, timeout=30,
                                hooks={"response": _record}, **kw)

    def spawn_form(self) -> str:
        r = self.s.get(f"{self.url}/hub/spawn")
        r.raise_for_status()
        return r.text

    def offered_profiles(self) -> list[str]:
        return re.findall(r'name="profile" value="([^"]+)"', self.spawn_form())

    def checked_profile(self) -> str | None:
        m = re.search(r'name="profile" value="([^"]+)" id="[^"]+" checked', self.spawn_form())
        return m.group(1) if m else None

    def post_form(self, fields: dict) -> requests.Response:
        return self.s.post(f"{self.url}/hub/spawn", data={**fields, "_xsrf": self.xsrf}, allow_redirects=True)

    def model(self) -> dict:
        r = self.api("GET", f"/users/{self.name}")
        r.raise_for_status()
        return r.json()

    def wait_ready(self, timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.model()["servers"].get("")
            if server and server["ready"]:
                return server
            time.sleep(0.25)
        raise AssertionError(f"{self.name}'s server not ready in {timeout}s")

    def progress_messages(self, timeout: float = 90) -> list[dict]:
        """Read the spawn progress event stream until it ends."""
        events = []
        with requests.get(f"{self.url}/hub/api/users/{self.name}/server/progress", headers=self.auth,
                          stream=True, timeout=timeout) as r:
            for line in r.iter_lines(decode_unicode=True):
                if line and line.startswith("data:"):
                    secretscan.record_response("GET", r.url + " (event)", line, r.status_code)
                    ev = json.loads(line[5:])
                    events.append(ev)
                    if ev.get("ready") or ev.get("failed"):
                        break
        return events

    def server_api(self, path: str) -> requests.Response:
        return requests.get(f"{self.url}/user/{self.name}{path}", headers=self.auth, timeout=30,
                            hooks={"response": _record})

    def stop(self, timeout: float = 60) -> None:
        r = self.api("DELETE", f"/users/{self.name}/server")
        assert r.status_code in (202, 204), r.text
        deadline = time.monotonic() + timeout
        while self.model()["servers"].get(""):
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}'s server did not stop")
            time.sleep(0.25)


_record = secretscan.record_requests_response  # a `requests` response hook: every answer joins the secret scan
