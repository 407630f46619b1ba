"""The pure parts of lock environments (odh_spawner.host.environments) and the profile field that names a lock."""

import os

import pytest

from odh_spawner.host.environments import (PROJECT_ROOT, Lock, LockError, env_key, files_digest, install_commands,
                                      lock_envs_of, parse_lock, resolve_lock_path, server_env)
from odh_spawner.errors import ProfileError
from odh_spawner.profiles.format import LocalEnvironment, load_profiles, parse_profiles
from odh_spawner.profiles.resolve import resolve
from tests.support.profiles import document, profile

pytestmark = pytest.mark.unit
DEMO = os.path.join(PROJECT_ROOT, "config", "demo", "profiles.yaml")


def test_parse_lock_pins_and_comments():
    lock = parse_lock("# header\nJinja2==3.1.6\n\nrequests==2.34.2  # why\n")
    assert lock.pins == (("Jinja2", "3.1.6"), ("requests", "2.34.2")) and not lock.hashed
    assert lock.version("jinja2") == "3.1.6" and lock.version("missing") is None


def test_parse_lock_with_hashes_and_continuations():
    h = "a" * 64
    lock = parse_lock(f"six==1.17.0 \\\n    --hash=sha256:{h} \\\n    --hash=sha256:{'b' * 64}\n"
                      f"idna==3.20 --hash=sha256:{h}\n")
    assert lock.pins == (("six", "1.17.0"), ("idna", "3.20")) and lock.hashed


@pytest.mark.parametrize("text, message", [
    ("requests>=2\n", "not an exact pin"),
    ("-r other.txt\n", "not an exact pin"),
    ("-e .\n", "not an exact pin"),
    ("--index-url https://example.org\nsix==1\n", "not an exact pin"),
    ("six==1.17.0\nSix==1.16.0\n", "pinned twice"),
    ("# nothing\n", "no package is pinned"),
    (f"six==1.17.0 --hash=sha256:{'a' * 64}\nidna==3.20\n", "some pins carry --hash"),
])
def test_parse_lock_refuses_what_is_not_a_lock(text, message):
    with pytest.raises(LockError, match=message) as e:
        parse_lock(text, "x.lock")
    assert str(e.value).startswith("x.lock")


@pytest.mark.parametrize("image", ["minimal", "datascience", "spark", "hub"])
def test_every_image_lock_parses(image):
    path = os.path.join(PROJECT_ROOT, "images", image, "requirements.lock")
    with open(path) as f:
        lock = parse_lock(f.read(), path)
    assert lock.version("jupyterhub") == "6.1.1" and not lock.hashed


def test_env_key_changes_with_every_input_and_only_then():
    base = (b"six==1.17.0\n", "3.11.2", "0.1.0", "abc")
    key = env_key(*base)
    assert key == env_key(*base) and len(key) == 32
    for i, other in enumerate((b"six==1.16.0\n", "3.11.9", "0.2.0", "abd")):
        changed = list(base)
        changed[i] = other
        assert env_key(*changed) != key


def test_files_digest_is_order_independent_and_content_sensitive():
    a = files_digest([("x.py", b"1"), ("y.py", b"2")])
    assert a == files_digest([("y.py", b"2"), ("x.py", b"1")])
    assert a != files_digest([("x.py", b"1"), ("y.py", b"3")])
    assert a != files_digest([("x.py", b"1"), ("z.py", b"2")])


def test_resolve_lock_path():
    assert resolve_lock_path("images/m/requirements.lock", "/srv/odh") == "/srv/odh/images/m/requirements.lock"
    assert resolve_lock_path("/etc/locks/a.lock", "/srv/odh") == "/etc/locks/a.lock"
    assert resolve_lock_path("../x/a.lock", "/srv/odh") == "/srv/x/a.lock"


def test_install_commands_without_dependency_resolution():
    lock = Lock((("six", "1.17.0"),), hashed=False)
    uv = install_commands("uv", "/bin/uv", "/usr/bin/python3", "/c/e", "/p/a.lock", lock, "/s/ext")
    assert uv[0][:3] == ["/bin/uv", "pip", "install"] and "--no-deps" in uv[0] and uv[0][-2:] == ["-r", "/p/a.lock"]
    assert "--require-hashes" not in uv[0]
    assert uv[1][-1] == "/s/ext" and "--no-deps" in uv[1]
    assert uv[2] == ["/bin/uv", "pip", "check", "--python", "/c/e/bin/python"]
    pip = install_commands("pip", "", "/usr/bin/python3", "/c/e", "/p/a.lock",
                           Lock((("six", "1.17.0"),), hashed=True), "/s/ext")
    assert pip[0][:4] == ["/c/e/bin/python", "-m", "pip", "install"] and "--require-hashes" in pip[0]
    assert "--no-deps" in pip[0] and "--no-deps" in pip[1] and pip[2] == ["/c/e/bin/python", "-m", "pip", "check"]


def test_server_env_runs_from_the_lock_environment():
    env = server_env({"PATH": "/hub/bin:/usr/bin", "PYTHONPATH": "/checkout", "VIRTUAL_ENV": "/hub", "X": "1"}, "/c/e")
    assert env == {"PATH": "/c/e/bin:/hub/bin:/usr/bin", "VIRTUAL_ENV": "/c/e", "X": "1"}


# -- the profile field ---------------------------------------------------------------------------------------------
def _local(value):
    return parse_profiles(document(profile(local={"environment": value})))[0].local


def test_local_environment_names_and_locks():
    assert _local("hub") == LocalEnvironment("hub")
    assert _local("py312") == LocalEnvironment("py312")
    lock = _local({"lock": "images/minimal/requirements.lock"})
    assert lock == LocalEnvironment("lock", lock="images/minimal/requirements.lock")
    assert lock.label == "lock images/minimal/requirements.lock" and _local("hub").label == "hub"
    assert parse_profiles(document(profile()))[0].local == LocalEnvironment("hub")


@pytest.mark.parametrize("value, field, message", [
    ({"lock": ""}, "local.environment.lock", "must not be empty"),
    ({"lock": 3}, "local.environment.lock", "must be a string"),
    ({"lock": "images/minimal/requirements.in"}, "local.environment.lock", "is not a lock file path"),
    ({}, "local.environment.lock", "is required"),
    ({"lock": "a.lock", "python": "3.12"}, "local.environment", "unknown key(s) python"),
    ("lock", "local.environment", "needs the lock file"),
    (["images/minimal/requirements.lock"], "local.environment", "must be a string"),
])
def test_local_environment_errors_name_the_field(value, field, message):
    with pytest.raises(ProfileError) as e:
        _local(value)
    assert e.value.field == field and message in str(e.value), str(e.value)


def test_the_plan_carries_the_lock():
    p = parse_profiles(document(profile(local={"environment": {"lock": "images/minimal/requirements.lock"}})))[0]
    plan = resolve([p], "alice", [], {"profile": p.slug})
    assert (plan.local_environment, plan.local_lock) == ("lock", "images/minimal/requirements.lock")


def test_demo_profiles_use_the_image_locks_and_they_exist():
    profiles = {p.slug: p for p in load_profiles(DEMO)}
    assert profiles["minimal"].local.lock == "images/minimal/requirements.lock"
    assert profiles["datascience"].local.lock == "images/spark/requirements.lock"  # it offers a Spark cluster
    assert lock_envs_of(profiles.values()) == {"images/minimal/requirements.lock": "minimal",
                                               "images/spark/requirements.lock": "datascience"}
    for lock in lock_envs_of(profiles.values()):
        assert os.path.isfile(resolve_lock_path(lock))


# -- the CLI ---------------------------------------------------------------------------------------------------------
def test_envs_build_needs_profiles_or_all_and_knows_them(capsys):
    from odh_spawner.cli import main

    demo = os.path.dirname(DEMO)
    assert main(["envs", "build", "--config-dir", demo]) == 2
    assert "name profiles to build, or --all" in capsys.readouterr().err
    assert main(["envs", "build", "--config-dir", demo, "nope"]) == 2
    assert "no such profile: nope" in capsys.readouterr().err


def test_check_config_reads_the_locks_profiles_name(tmp_path, capsys):
    import shutil

    import yaml

    from odh_spawner.cli import main

    for name in ("platform.yaml", "users.yaml", "profiles.yaml"):
        shutil.copy(os.path.join(os.path.dirname(DEMO), name), tmp_path / name)
    assert main(["check-config", str(tmp_path)]) == 0
    doc = yaml.safe_load((tmp_path / "profiles.yaml").read_text())
    doc["profiles"][0]["local"] = {"environment": {"lock": "images/nope/requirements.lock"}}
    (tmp_path / "profiles.yaml").write_text(yaml.safe_dump(doc))
    capsys.readouterr()
    assert main(["check-config", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "profile 'minimal'" in err and "local.environment.lock" in err and "Cannot read the lock" in err, err


def test_notebook_files_follow_the_wheels_package_list(tmp_path):
    """What goes into a lock environment is what images/notebook-ext/pyproject.toml says the wheel ships."""
    from odh_spawner.host.environments import EnvBuildError, notebook_files

    (tmp_path / "images/notebook-ext").mkdir(parents=True)
    (tmp_path / "images/notebook-ext/pyproject.toml").write_text(
        '[tool.setuptools]\npackages = ["server_extension", "odh_spawner", "odh_spawner.ingest"]\n'
        '[tool.odh-hub]\nshared-modules = ["odh_spawner/__init__.py", "odh_spawner/ingest/__init__.py", '
        '"odh_spawner/ingest/spec.py"]\n')
    for rel in ("server_extension/__init__.py", "server_extension/openapi.yaml", "odh_spawner/__init__.py",
                "odh_spawner/ingest/__init__.py", "odh_spawner/ingest/spec.py", "odh_spawner/other/x.py",
                "odh_spawner/platform_side.py", "odh_spawner/ingest/manager.py",
                "jupyter-config/jupyter_server_config.d/odh-hub.json"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    with pytest.raises(EnvBuildError, match="labextension is not built"):
        notebook_files(tmp_path)
    (tmp_path / "labextension/odh_labextension/static").mkdir(parents=True)
    (tmp_path / "labextension/odh_labextension/package.json").write_text("{}")
    (tmp_path / "labextension/odh_labextension/static/a.js").write_text("")
    files = notebook_files(tmp_path)
    assert sorted(files) == sorted(["pyproject.toml", "jupyter-config/jupyter_server_config.d/odh-hub.json",
                             "odh_labextension/package.json", "odh_labextension/static/a.js", "odh_spawner/__init__.py",
                             "odh_spawner/ingest/__init__.py", "odh_spawner/ingest/spec.py",
                             "server_extension/__init__.py", "server_extension/openapi.yaml"])  # only the shared


def test_the_notebook_side_imports_of_the_hub_side_only_the_shared_modules():
    """server_extension runs in notebook images and lock environments, where odh_spawner is only the modules the
    notebook wheel lists: neither they nor server_extension may import any other odh_spawner module."""
    import ast
    import tomllib

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "images/notebook-ext/pyproject.toml"), "rb") as f:
        shared = tomllib.load(f)["tool"]["odh-hub"]["shared-modules"]
    allowed = {m[:-3].replace("/", ".").removesuffix(".__init__") for m in shared}

    def is_module(name: str) -> bool:
        rel = os.path.join(root, *name.split("."))
        return os.path.exists(rel + ".py") or os.path.exists(os.path.join(rel, "__init__.py"))
    sources = [os.path.join(root, m) for m in shared]
    sources += [os.path.join(root, "server_extension", n) for n in os.listdir(os.path.join(root, "server_extension"))
                if n.endswith(".py")]
    bad = []
    for path in sources:
        package = os.path.relpath(os.path.dirname(path), root).replace("/", ".")
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, ast.ImportFrom):
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                mod = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
                # `from pkg import sub`: sub is a module when a file of that name exists
                modules = [mod] + [f"{mod}.{a.name}" for a in node.names if is_module(f"{mod}.{a.name}")]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            else:
                continue
            bad += [(os.path.relpath(path, root), m) for m in modules if m.startswith("odh_spawner") and m not in allowed]
    assert not bad, bad


def test_environment_summary_names_python_and_the_key_packages_the_lock_pins():
    from odh_spawner.host.environments import environment_summary

    lock = parse_lock("pandas==3.1.1\nrequests==2.34.2\njupyterlab==4.6.6\npyspark==4.3.0\n")
    assert environment_summary("3.11.2", lock) == "Python 3.11.2 · jupyterlab 4.6.6 · pandas 3.1.1 · pyspark 4.3.0"
    with open(os.path.join(PROJECT_ROOT, "images", "spark", "requirements.lock")) as f:
        spark = environment_summary("3.11.2", parse_lock(f.read()))
    assert "pyspark 4.3.0" in spark and "mlflow-skinny 3.17.2" in spark and "confluent-kafka" in spark
