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
