"""What Kubernetes says about a starting server's pod, in user words. Pure.

OdhKubeSpawner relays the pod's Events (the scheduler's "0/3 nodes are available: 3 Insufficient nvidia.com/gpu",
image pulls, mount failures) as progress messages, and ends a start at once when the pod has ended before it
became ready (phase Failed, e.g. evicted) instead of waiting for the start timeout."""

from __future__ import annotations

# Event reason -> what the user reads; True: the Event's own message follows (it says why)
EVENT_WORDS: dict[str, tuple[str, bool]] = {
    "FailedScheduling": ("Waiting for room in the cluster", True),
    "Scheduled": ("Your server was placed on a node", False),
    "Pulling": ("Downloading your server's image", False),
    "Pulled": ("Image downloaded", False),
    "Started": ("Your server's container started", False),
    "Failed": ("Your server's container could not start", True),
    "BackOff": ("Your server's container keeps stopping; Kubernetes retries it", True),
    "FailedMount": ("A volume of your server could not be mounted", True),
    "FailedAttachVolume": ("A volume of your server could not be attached", True),
}


def event_message(event: dict) -> str | None:
    """A Kubernetes Event about the pod as a progress message; None for Events users need not see."""
    words = EVENT_WORDS.get(str(event.get("reason") or ""))
    if words is None:
        return None
    text, with_detail = words
    detail = str(event.get("message") or "").strip()
    return f"{text}: {detail}" if with_detail and detail else text


def pod_failure(pod: dict | None) -> str | None:
    """Why the pod ended before it was ready (phase Failed or Succeeded), as a message for the user; None while it
    may still become ready."""
    status = (pod or {}).get("status") or {}
    phase = status.get("phase")
    if phase not in ("Failed", "Succeeded"):
        return None
    why = [str(status[k]) for k in ("reason", "message") if status.get(k)]
    if not why:
        for c in status.get("containerStatuses") or []:
            ended = (c.get("state") or {}).get("terminated") or {}
            why = [str(ended[k]) for k in ("reason", "message") if ended.get(k)]
            if "exitCode" in ended and not why:
                why = [f"exit code {ended['exitCode']}"]
            if why:
                break
    detail = f": {': '.join(why)}" if why else ""
    return f"Your server's pod stopped before it was ready ({phase}{detail}). Try again, or tell your platform admin."
