"""odh-hub, notebook side: the Jupyter server extension (/odh/api/...), a Python client and widgets."""

from .app import OdhExtensionApp


def _jupyter_server_extension_points():
    return [{"module": "server_extension", "app": OdhExtensionApp}]


__all__ = ["OdhExtensionApp"]
