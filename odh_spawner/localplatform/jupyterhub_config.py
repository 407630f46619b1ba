# JupyterHub config file for the local platform: loads runtime settings (JSON data) written by `odh-hub up`.
import json
import os

from odh_spawner.localplatform.hubconfig import configure

c = get_config()  # noqa: F821 - provided by JupyterHub
with open(os.environ["ODH_HUB_SETTINGS"], encoding="utf-8") as f:
    configure(c, json.load(f))
