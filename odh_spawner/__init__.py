"""odh-hub, hub side: image profiles, spawners, and the local platform."""

__version__ = "0.1.0"
