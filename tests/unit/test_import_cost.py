"""What a server start imports: the rfc3987-syntax grammar (2.2 s of Lark parsers, jupyter_server#1559) must
not come back, and the notebook-side package must stay light for kernels."""

import subprocess
import sys


def imported_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def test_a_server_start_does_not_import_the_rfc3987_grammar():
    modules = imported_after("import jupyter_server.serverapp, jupyterlab.labapp, jupyterhub.singleuser.extension, "
                             "server_extension.app, jsonschema; jsonschema.Draft7Validator.FORMAT_CHECKER")
    assert "jupyter_events" in modules and "jsonschema" in modules  # the path that used to pull it in
    assert not any(m.startswith("rfc3987_syntax") for m in modules), "rfc3987_syntax is imported again: " \
        "a jsonschema >= 4.25 came back (see the pin in pyproject.toml)"


def test_loading_the_server_extension_imports_no_boto3():
    modules = imported_after("import server_extension.app")
    assert "server_extension.handlers" in modules
    assert not any(m.split(".")[0] in ("boto3", "botocore", "s3transfer") for m in modules)


def test_kernels_import_our_client_side_without_jupyter_server_or_boto3():
    modules = imported_after("import server_extension, server_extension.spark_kernel")
    assert "jupyter_server" not in modules
    assert "boto3" not in modules


def test_the_notebook_images_locks_carry_the_same_fix():
    """Every image lock pins the jsonschema of pyproject.toml and has no rfc3987-syntax (one fix, both runtimes)."""
    import glob
    import os
    import re

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "pyproject.toml")) as f:
        pin = re.search(r'"(jsonschema==[^"]+)"', f.read()).group(1)
    locks = sorted(glob.glob(os.path.join(root, "images", "*", "requirements.lock")))
    assert len(locks) >= 4, locks
    for lock in locks:
        with open(lock) as f:
            lines = {line.split("#")[0].strip().lower() for line in f}
        assert pin in lines, f"{lock} does not pin {pin}"
        assert not any(line.startswith("rfc3987-syntax") for line in lines), f"{lock} has rfc3987-syntax"


HEAVY = ("boto3", "botocore", "pandas", "pyspark", "pyarrow", "jupyter_server", "ipywidgets", "confluent_kafka")


def test_the_short_user_import_is_cheap_until_used():
    """`from odh_hub import ...` (the notebooks' name for the client API) imports nothing heavy, and neither do
    its names until they are used; the first use of a name loads what it needs, and it is the real object."""
    modules = imported_after("import odh_hub\nfrom odh_hub import deploy, ingest, buckets, spark\n"
                             "assert callable(deploy) and callable(ingest)")
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert "server_extension.deploy" in modules and "server_extension.ingest" in modules
    assert not heavy, f"importing odh_hub pulled in {heavy}"
    assert "server_extension.client" in modules  # the HTTP client only (requests), not the S3 one


def test_the_short_import_names_the_real_objects():
    import odh_hub
    from server_extension import client, deploy, ingest, spark_client

    assert odh_hub.deploy is deploy.deploy and odh_hub.ingest is ingest.ingest
    assert odh_hub.BucketClient is client.BucketClient and odh_hub.buckets.BucketClient is client.BucketClient
    assert odh_hub.scale_spark is spark_client.scale and odh_hub.spark.status is spark_client.spark_status
    assert set(odh_hub.__all__) <= set(dir(odh_hub))
    for name in odh_hub.__all__:  # every advertised name resolves (widgets included)
        assert getattr(odh_hub, name) is not None
    try:
        odh_hub.no_such_name
    except AttributeError as e:
        assert "no_such_name" in str(e)
    else:
        raise AssertionError("an unknown name must raise AttributeError")
