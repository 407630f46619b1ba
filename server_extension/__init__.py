"""odh-hub, notebook side: the Jupyter server extension (/odh/api/...), a Python client and widgets.

Importing the package costs nothing: the server extension (and Jupyter Server with it) is imported only when
Jupyter Server loads it, so a kernel importing the client, the widgets or the Spark wait stays light.
"""


def _jupyter_server_extension_points():
    from .app import OdhExtensionApp

    return [{"module": "server_extension", "app": OdhExtensionApp}]


def __getattr__(name):
    if name == "OdhExtensionApp":
        from .app import OdhExtensionApp

        return OdhExtensionApp
    raise AttributeError(f"Module {__name__!r} has no attribute {name!r}.")


__all__ = ["OdhExtensionApp"]
