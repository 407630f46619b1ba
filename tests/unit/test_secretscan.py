"""The pure part of the secret scan: which names hold secrets, which files give them, where they are found."""

import base64
import json
import urllib.parse

from tests.support.secretscan import (find_leaks, is_secret_name, is_secret_value, redact, response_allowed,
                                      secrets_in_mapping, secrets_in_text_file)

S3 = "Zq3x9T/kP+8vLm2nQw7eRt1yUi0oPa4sDf6gHj5k"
TOKEN = "4f1c2b9e8d7a6c5b4a3928171615141312111009"
ODD = "k3y~~~???>>>~~~???"  # its base64 has '+' and '/', so the URL-safe alphabet differs


def test_secret_names():
    for name in ("AWS_SECRET_ACCESS_KEY", "JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN", "CONFIGPROXY_AUTH_TOKEN",
                 "secret_key", "proxy_auth_token", "spark.authenticate.secret", "endpoint_key", "DB_PASSWORD", "key",
                 "spark.hadoop.fs.s3a.secret.key"):
        assert is_secret_name(name), name
    for name in ("AWS_ACCESS_KEY_ID", "access_key", "ODH_RGW_ADMIN_KEYS_FILE", "rgw_admin_keys_file", "secret_name",
                 "GPG_KEY", "object_key", "JUPYTERHUB_API_URL", "HOME", "token_expires_at", "PATH",
                 "spark.hadoop.fs.s3a.access.key"):
        assert not is_secret_name(name), name


def test_secret_values():
    assert is_secret_value(S3) and is_secret_value(TOKEN)
    for value in ("", "short", "/var/lib/x/admin-keys.json", "http://127.0.0.1:8000/", "12345678901", "a b c d e f",
                  None, 42, "true", "credentials"):
        assert not is_secret_value(value), value
    # what generators and people make for secrets is still looked for
    for value in ("alice-odh", "a1b2c3d4e5f6", "odhk_Zx9", "Hunter2Hunter2", "k3y-material"):
        assert is_secret_value(value), value


def test_finds_plain_url_encoded_and_base64_forms_with_line_and_redacted_snippet():
    secrets = {S3: "s3-secret", TOKEN: "hub-token", ODD: "endpoint-key"}
    texts = [
        ("clean.log", b"nothing here\nat all\n"),
        ("plain.log", f"line one\nenv AWS_SECRET_ACCESS_KEY={S3} set\n"),
        ("url.log", "GET /x?sig=" + urllib.parse.quote(S3, safe="") + " 200"),
        ("b64.log", b"Authorization: Basic " + base64.b64encode(b"alice:" + TOKEN.encode())),
        ("b64url.log", base64.urlsafe_b64encode(b"xx" + ODD.encode() + b"yy").decode()),
    ]
    assert "_" in texts[-1][1] or "-" in texts[-1][1]  # the URL-safe alphabet differs here
    found = find_leaks(texts, secrets)
    leaks = {leak.source: leak for leak in found}
    assert set(leaks) == {"plain.log", "url.log", "b64.log", "b64url.log"}
    assert (leaks["plain.log"].kind, leaks["plain.log"].form, leaks["plain.log"].line) == ("s3-secret", "plain", 2)
    assert leaks["url.log"].form == "url-encoded"
    assert (leaks["b64.log"].kind, leaks["b64.log"].form) == ("hub-token", "base64")
    assert leaks["b64url.log"].form == "base64url"
    for leak in found:
        assert not any(secret in str(leak) for secret in secrets)
    assert leaks["plain.log"].snippet == "line one\\nenv AWS_SECRET_ACCESS_KEY=[s3-secret] set\\n"


def test_counts_occurrences_and_ignores_too_short_secrets():
    leaks = find_leaks([("a", f"{TOKEN} and {TOKEN} and abc")], {TOKEN: "hub-token", "abc": "tiny"})
    assert [(leak.kind, leak.count) for leak in leaks] == [("hub-token", 2)]


def test_redact_replaces_every_known_secret():
    assert redact(f"a={S3} b={TOKEN}".encode(), {S3: "s3-secret", TOKEN: "hub-token"}) == "a=[s3-secret] b=[hub-token]"


def test_secrets_in_json_at_any_depth():
    data = {"proxy_auth_token": TOKEN, "rgw_admin_keys_file": "/tmp/x/admin-keys.json",
            "nested": [{"access_key": "AKIAPUBLICID0001", "secret_key": S3}], "endpoint": "http://127.0.0.1:1"}
    assert sorted(secrets_in_mapping(data, "k")) == sorted([(TOKEN, "k"), (S3, "k")])


def test_secrets_in_state_files():
    assert secrets_in_text_file(json.dumps({"secret_key": S3}), "admin-keys.json", "k") == [(S3, "k")]
    assert secrets_in_text_file(TOKEN + "\n", "jupyterhub_cookie_secret", "c") == [(TOKEN, "c")]
    assert secrets_in_text_file(TOKEN + "\n", "notes.txt", "c") == []  # a one-liner not named like a secret
    keyring = "[client.admin]\n\tkey = AQBvZ2VsbG8gd29ybGQhIGJ5ZSBieWU=\n\tcaps mon = \"allow *\"\n"
    assert secrets_in_text_file(keyring, "keyring", "ceph-key") == [("AQBvZ2VsbG8gd29ybGQhIGJ5ZSBieWU=", "ceph-key")]
    conf = "spark.master spark://127.0.0.1:7077\nspark.authenticate true\nspark.authenticate.secret " + TOKEN + "\n"
    assert secrets_in_text_file(conf, "spark-defaults.conf", "spark-secret") == [(TOKEN, "spark-secret")]


def test_allow_listed_answers():
    assert response_allowed("POST", "http://127.0.0.1:1/hub/api/users/alice/tokens")
    assert not response_allowed("GET", "http://127.0.0.1:1/hub/api/users/alice/tokens")
    assert not response_allowed("GET", "http://127.0.0.1:1/hub/api/users/alice")


def test_the_watcher_keeps_removed_logs_and_harvests_secret_files(tmp_path):
    from tests.support import secretscan

    log = tmp_path / "platform" / "deployments" / "alice" / "churn" / "mlserver.log"
    log.parent.mkdir(parents=True)
    log.write_text(f"started\nkey {TOKEN}\n")
    (log.parent / "deployment.json").write_text(json.dumps({"owner": "alice", "api_key": "odhk_" + "x" * 43}))
    watcher = secretscan.Watcher([str(tmp_path)])
    watcher.look()
    assert secretscan.REGISTRY.secrets.get("odhk_" + "x" * 43) == "endpoint-key"
    assert watcher.vanished() == []
    log.unlink()
    [(source, data)] = watcher.vanished()
    assert source.startswith(str(log)) and TOKEN.encode() in data
    del secretscan.REGISTRY.secrets["odhk_" + "x" * 43]


def test_rgw_admin_answers_are_not_recorded_but_others_on_its_port_are():
    assert response_allowed("GET", "http://127.0.0.1:7480/admin/user?format=json&uid=odh-alice")
    assert not response_allowed("GET", "http://127.0.0.1:7480/alice-bucket/admin/user")
    assert not response_allowed("GET", "http://127.0.0.1:8000/hub/admin")


def test_answers_past_the_memory_budget_are_spilled_to_a_file_and_still_scanned(tmp_path, monkeypatch):
    from tests.support import secretscan

    monkeypatch.setattr(secretscan, "REGISTRY", secretscan.Registry())
    monkeypatch.setattr(secretscan, "MAX_RECORDED_BYTES", 100)
    spill = tmp_path / "spill" / secretscan.SPILL_NAME
    monkeypatch.setattr(secretscan, "spill_path", lambda: str(spill))
    secretscan.register_secret(TOKEN, "hub-token")
    secretscan.record_response("GET", "http://127.0.0.1:1/hub/api/first", f'{{"a":\n"{TOKEN}"}}', 200)
    for i in range(5):
        secretscan.record_response("GET", f"http://127.0.0.1:1/hub/api/{i}", "x" * 60, 200)
    assert secretscan.REGISTRY.answers_spilled >= 1 and secretscan.REGISTRY.answers_dropped == 0
    report = secretscan.run(str(tmp_path / "no-artifacts"), [str(tmp_path / "no-root")])
    [leak] = report.leaks
    assert (leak.source, leak.line, leak.kind) == (str(spill), 2, "hub-token")
    assert spill.read_bytes().startswith(b"answer: GET http://127.0.0.1:1/hub/api/first -> 200\n")
