# JupyterHub configuration shipped by the odh-hub Helm chart. It is not templated: the chart's values reach it
# as data (settings.json in the same ConfigMap) and secrets as environment variables from the chart's Secrets.
import os

from odh_spawner.kubeplatform.hubconfig import load

c = get_config()  # noqa: F821 - provided by JupyterHub
load(c, os.environ.get("ODH_HUB_SETTINGS", "/etc/odh-hub/config/settings.json"), os.environ)
