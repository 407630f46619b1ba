# JupyterHub configuration shipped by the odh-hub Helm chart. It is not templated: the chart's values reach it
# as data (settings.json in the same ConfigMap) and secrets as environment variables from the chart's Secrets.
import os

from odh_spawner.kubeplatform.hubconfig import load

c = get_config()  # noqa: F821 - provided by JupyterHub
load(c, os.environ.get("ODH_HUB_SETTINGS", "/etc/odh-hub/config/settings.json"), os.environ)

# metrics.scrapeToken: Prometheus's token, a hub service whose only scope is read:metrics (both /hub/metrics and
# the platform service's /services/odh-platform/metrics ask for it), as the local platform's odh-prometheus
if os.environ.get("ODH_METRICS_API_TOKEN"):
    c.JupyterHub.services.append({"name": "odh-prometheus", "api_token": os.environ["ODH_METRICS_API_TOKEN"],
                                  "display": False})
    c.JupyterHub.load_roles.append({"name": "odh-prometheus", "scopes": ["read:metrics"],
                                    "services": ["odh-prometheus"]})
