"""The local platform: JupyterHub, its proxy, the idle culler and a real single-node Ceph RGW, as processes."""
