"""The `odh-hub` command: run the local platform, check a configuration, hash a password."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from .errors import ProfileError


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
    args = parser.parse_args(argv)

    try:
        if args.command == "up":
            from .localplatform.launcher import up

            return up(args.config_dir, args.state_dir)
        if args.command == "check-config":
            return check_config(args.config_dir)
        if args.command == "hash-password":
            from .passwords import hash_password

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


def check_config(config_dir: str) -> int:
    from .localplatform.settings import load_settings
    from .profiles import load_profiles
    from .users import load_users

    settings = load_settings(config_dir)
    profiles = load_profiles(settings.profiles_file)
    users = load_users(settings.users_file)
    print(f"ok: {len(profiles)} profiles ({', '.join(p.slug for p in profiles)}), {len(users)} users")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
