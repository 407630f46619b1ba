"""A real kernel in a user's notebook server, driven over the Jupyter kernel websocket protocol
(what JupyterLab does): start it through the REST API, run code, collect stdout, the result and errors."""

from __future__ import annotations

import json
import time
import uuid

import requests
import websocket


class KernelError(AssertionError):
    pass


class Kernel:
    def __init__(self, server_url: str, token: str):
        self.server_url = server_url.rstrip("/") + "/"
        self.headers = {"Authorization": f"token {token}"}
        r = requests.post(self.server_url + "api/kernels", headers=self.headers, json={"name": "python3"},
                          timeout=60)
        r.raise_for_status()
        self.id = r.json()["id"]
        ws_url = self.server_url.replace("http", "ws", 1) + f"api/kernels/{self.id}/channels"
        self.ws = websocket.create_connection(ws_url, header=[f"Authorization: token {token}"], timeout=60)
        self.session = uuid.uuid4().hex

    def execute(self, code: str, timeout: float = 300) -> str:
        """Run `code`; returns its stdout (and display text). A Python error raises KernelError with it."""
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test",
                       "session": self.session, "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True},
        }))
        out, error, idle = [], None, False
        deadline = time.monotonic() + timeout
        while not idle:
            if time.monotonic() > deadline:
                raise KernelError(f"code did not finish within {timeout}s; output so far:\n{''.join(out)}")
            msg = json.loads(self.ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind in ("execute_result", "display_data"):
                out.append(content["data"].get("text/plain", "") + "\n")
            elif kind == "error":
                error = "\n".join(content.get("traceback", [])) or f"{content['ename']}: {content['evalue']}"
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
        if error:
            raise KernelError(f"{error}\n--- output:\n{''.join(out)}")
        return "".join(out)

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            requests.delete(self.server_url + f"api/kernels/{self.id}", headers=self.headers, timeout=30)
