"""The Kubernetes platform as the Helm chart installs it: the hub configuration from the chart's settings."""
