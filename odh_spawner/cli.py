"""The `odh-hub` command: run the local platform, see what of it runs and what its Prometheus alerts on, restart
one of its components, check a configuration, hash a password, build the profiles' lock environments."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from odh_spawner.errors import ProfileError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="odh-hub", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start the local platform (Ceph RGW + JupyterHub) until Ctrl-C")
    p_up.add_argument("--config-dir", default=os.environ.get("ODH_CONFIG_DIR", "config/demo"),
                      help="directory with platform.yaml, profiles.yaml, users.yaml (default: $ODH_CONFIG_DIR or config/demo)")
    p_up.add_argument("--state-dir", default=os.environ.get("ODH_STATE_DIR", ".odh-state"),
                      help="where runtime state goes (default: $ODH_STATE_DIR or .odh-state)")
    p_check = sub.add_parser("check-config", help="validate a configuration directory and exit")
    p_check.add_argument("config_dir")
    sub.add_parser("hash-password", help="print a password hash for users.yaml (reads the password from stdin)")
    p_cred = sub.add_parser("credentials", help="manage a user's object-storage (RGW) user and keys")
    p_cred.add_argument("action", choices=("rotate", "remove"),
                        help="rotate: new keys, old ones stop working (restart the user's server to pick them up); "
                             "remove: delete the RGW user and all its buckets")
    p_cred.add_argument("username", help="the JupyterHub user name")
    p_cred.add_argument("--admin-keys", default=os.environ.get("ODH_RGW_ADMIN_KEYS", ".odh-state/ceph/admin-keys.json"),
                        help="JSON file with the RGW admin access_key, secret_key and endpoint "
                             "(default: $ODH_RGW_ADMIN_KEYS or the local platform's .odh-state/ceph/admin-keys.json)")
    p_cred.add_argument("--endpoint", default=os.environ.get("ODH_RGW_ENDPOINT", ""),
                        help="RGW URL (default: the endpoint in the admin keys file, or $ODH_RGW_ENDPOINT)")
    p_cred.add_argument("--keep-data", action="store_true", help="with remove: keep the user's buckets")
    state_help = "the local platform's state directory (default: $ODH_STATE_DIR or .odh-state)"
    p_status = sub.add_parser("status", help="the running local platform's components: PID, state, address")
    p_status.add_argument("--state-dir", default=os.environ.get("ODH_STATE_DIR", ".odh-state"), help=state_help)
    p_status.add_argument("--url", metavar="COMPONENT", default="",
                          help="print only this component's address (e.g. prometheus, hub, platform)")
    p_restart = sub.add_parser("restart", help="stop one component of the running local platform and wait until "
                                               "its supervisor has started it again")
    p_restart.add_argument("component", help="a name `status` lists: ceph-rgw, ceph-mon, ceph-osd, kafka, hub, "
                                             "platform, prometheus")
    p_restart.add_argument("--state-dir", default=os.environ.get("ODH_STATE_DIR", ".odh-state"), help=state_help)
    p_restart.add_argument("--timeout", type=float, default=120, help="seconds to wait for it (default 120)")
    p_alerts = sub.add_parser("alerts", help="the alerts the local platform's Prometheus has pending or firing")
    p_alerts.add_argument("--state-dir", default=os.environ.get("ODH_STATE_DIR", ".odh-state"), help=state_help)
    p_envs = sub.add_parser("envs", help="the virtualenvs the local platform builds from image locks")
    envs_sub = p_envs.add_subparsers(dest="envs_command", required=True)
    p_build = envs_sub.add_parser("build", help="build (once; cached) the lock environments of profiles")
    p_build.add_argument("profiles", nargs="*", help="profile slugs (default with --all: every profile naming a lock)")
    p_build.add_argument("--all", action="store_true", help="every profile of the configuration that names a lock")
    p_build.add_argument("--config-dir", default=os.environ.get("ODH_CONFIG_DIR", "config/demo"),
                         help="directory with profiles.yaml (default: $ODH_CONFIG_DIR or config/demo)")
    p_build.add_argument("--cache-dir", default="", help="where environments are kept (default: see the admin guide)")
    args = parser.parse_args(argv)

    try:
        if args.command == "up":
            from odh_spawner.localplatform.launcher import up

            return up(args.config_dir, args.state_dir)
        if args.command == "check-config":
            return check_config(args.config_dir)
        if args.command == "credentials":
            return credentials(args)
        if args.command == "envs":
            return build_envs(args)
        if args.command in ("status", "restart", "alerts"):
            return status(args)
        if args.command == "hash-password":
            from odh_spawner.auth.passwords import hash_password

            pw = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
            if not pw:
                print("error: empty password", file=sys.stderr)
                return 2
            print(hash_password(pw))
            return 0
    except ProfileError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 2


def status(args) -> int:
    from odh_spawner.localplatform import status as st

    try:
        if args.command == "restart":
            st.restart(args.state_dir, args.component, timeout=args.timeout, report=lambda m: print(m, flush=True))
            return 0
        if args.command == "alerts":
            print("\n".join(st.alert_lines(st.alerts(args.state_dir))) or "No alerts pending or firing.")
            return 0
        if args.url:
            print(st.find(args.state_dir, args.url).address)
            return 0
        for c in st.components(args.state_dir):
            print(f"{c.name:<12} {c.pid or '-':>8}  {c.state:<8} {c.address}")
        return 0
    except st.StatusError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def credentials(args) -> int:
    import asyncio
    import json

    from odh_spawner.credentials import CredentialsUnavailable
    from odh_spawner.credentials.rgw import RgwCredentialStore

    try:
        with open(args.admin_keys, encoding="utf-8") as f:
            keys = json.load(f)
    except (OSError, ValueError) as e:
        print(f"error: cannot read admin keys from {args.admin_keys}: {e}", file=sys.stderr)
        return 2
    endpoint = args.endpoint or keys.get("endpoint", "")
    if not endpoint:
        print("error: no RGW endpoint: pass --endpoint", file=sys.stderr)
        return 2
    store = RgwCredentialStore(endpoint, keys["access_key"], keys["secret_key"])
    try:
        if args.action == "rotate":
            creds = asyncio.run(store.rotate(args.username))
            print(f"rotated: {args.username} now has access key {creds.access_key}; restart their server to use it")
        else:
            removed = asyncio.run(store.remove(args.username, purge_data=not args.keep_data))
            print(f"removed {args.username}'s object-storage user" if removed else f"{args.username} had no object-storage user")
    except CredentialsUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def check_config(config_dir: str) -> int:
    from odh_spawner.localplatform.settings import load_settings
    from odh_spawner.profiles.format import load_profiles
    from odh_spawner.auth.users import load_users

    settings = load_settings(config_dir)
    profiles = load_profiles(settings.profiles_file)
    users = load_users(settings.users_file)
    from odh_spawner.host.environments import LockEnvironments, LockError

    envs = LockEnvironments()
    for p in profiles:  # a lock a profile names must exist and pin exactly
        if p.local.lock:
            try:
                envs.read_lock(p.local.lock)
            except LockError as e:
                raise ProfileError(str(e), source=settings.profiles_file, profile=p.slug,
                                   field="local.environment.lock") from None
    print(f"ok: {len(profiles)} profiles ({', '.join(p.slug for p in profiles)}), {len(users)} users")
    return 0


def build_envs(args) -> int:
    import time

    from odh_spawner.host.environments import EnvBuildError, LockEnvironments, LockError, lock_envs_of
    from odh_spawner.localplatform.settings import load_settings
    from odh_spawner.profiles.format import load_profiles

    profiles = load_profiles(load_settings(args.config_dir).profiles_file)
    if not args.all and not args.profiles:
        print("error: name profiles to build, or --all", file=sys.stderr)
        return 2
    unknown = sorted(set(args.profiles) - {p.slug for p in profiles})
    if unknown:
        print(f"error: no such profile: {', '.join(unknown)}", file=sys.stderr)
        return 2
    chosen = [p for p in profiles if args.all or p.slug in args.profiles]
    locks = lock_envs_of(chosen)
    for p in chosen:
        if not p.local.lock:
            print(f"{p.slug}: runs in the '{p.local.environment}' environment (no lock to build)")
    envs = LockEnvironments(**({"cache_dir": args.cache_dir} if args.cache_dir else {}))
    failed = 0
    for lock, slug in locks.items():
        began = time.monotonic()
        try:
            built = envs.ensure(lock, log=lambda m: print(f"{slug}: {m}", flush=True))
        except (LockError, EnvBuildError) as e:
            print(f"error: {slug}: {e}", file=sys.stderr)
            failed += 1
            continue
        how = "built" if built.built else "already built"
        print(f"{slug}: {lock}: {how} in {time.monotonic() - began:.1f} s: {built.path}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
