# JupyterHub config file for the local platform: loads runtime settings (JSON data) written by `odh-hub up`.
import json
import os

from odh_spawner.localplatform.hubconfig import configure

# what the hub and the platform's own processes create (database, logs, records) is theirs alone; users'
# homes and Spark directories are made for them explicitly, with their own owner and mode
os.umask(0o077)

c = get_config()  # noqa: F821 - provided by JupyterHub
with open(os.environ["ODH_HUB_SETTINGS"], encoding="utf-8") as f:
    settings = json.load(f)
# the state directory is traversable (users' homes are below it) but not listable
os.chmod(settings["state_dir"], 0o711)
configure(c, settings)
