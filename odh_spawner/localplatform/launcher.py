"""`odh-hub up`: Ceph RGW + Kafka + JupyterHub (proxy, idle culler, odh spawner) + Prometheus on this machine,
until Ctrl-C.

While running it supervises what it started: a Ceph daemon (mon, OSD, RGW), the Kafka broker, the hub or
Prometheus that exits on its own is started again, on the same addresses, with one log line each. The hub itself restarts its managed services
(the platform service, the idle culler) when they exit.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from odh_spawner.profiles.format import load_profiles
from odh_spawner.auth.users import load_users
from odh_spawner.localplatform.ceph import CephCluster
from odh_spawner.localplatform.hub import HubProcess, runtime_settings
from odh_spawner.localplatform.apache_kafka import ApacheKafkaBroker
from odh_spawner.localplatform.kafka import KafkaBroker
from odh_spawner.localplatform.prometheus import RULES_FILE, PrometheusProcess
from odh_spawner.localplatform import runrecord
from odh_spawner.localplatform.settings import load_settings
from odh_spawner.host.supervise import RestartBudget, exit_text

STATE_DIR_MODE = 0o711  # others may pass through (to their homes below it) but not list it


class _StopFlag:
    flag = False
    running = False

    def is_set(self) -> bool:
        return self.flag


def _say(msg: str) -> None:
    print(f"[odh-hub {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def up(config_dir: str, state_dir: str, wait: bool = True) -> int:
    settings = load_settings(config_dir)
    profiles = load_profiles(settings.profiles_file)  # fail before starting anything
    users = load_users(settings.users_file)
    _say(f"Configuration {settings.config_dir}: {len(profiles)} profiles, {len(users)} users")
    os.makedirs(state_dir, mode=STATE_DIR_MODE, exist_ok=True)
    os.chmod(state_dir, STATE_DIR_MODE)

    stop = _StopFlag()

    def on_signal(signum, _frame):
        # no locks in a signal handler (an Event here can deadlock the main thread)
        if not stop.is_set():
            _say(f"{signal.Signals(signum).name} received: stopping")
        stop.flag = True
        if not stop.running:
            raise KeyboardInterrupt  # still starting: unwind now; `finally` stops what was started

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    ceph = hub = kafka = prometheus = None
    recorded: list[tuple[str, int]] = []

    def record() -> None:
        """Keep up.json naming what runs now (the supervisors restart processes under new PIDs)."""
        running = [("launcher", os.getpid(), "")]
        running += [(f"ceph-{name}", d.proc.pid, ceph.endpoint if name == "rgw" else "")
                    for name, d in (ceph.daemons.items() if ceph else ()) if d.proc is not None]
        running += [("kafka", kafka.proc.pid, kafka.bootstrap)] if kafka is not None and kafka.proc is not None else []
        running += [("hub", hub.proc.pid, hub.url)] if hub is not None and hub.proc is not None else []
        running += ([("prometheus", prometheus.proc.pid, prometheus.url)]
                    if prometheus is not None and prometheus.proc is not None else [])
        if running != recorded:
            runrecord.write(state_dir, [runrecord.entry(*r) for r in running])
            recorded[:] = running

    owns_record = False  # a refused start must not remove the running launcher's record
    try:
        left = runrecord.reap(state_dir, _say)
        owns_record = True
        if left:
            _say(f"Stopped {left} process(es) the previous run left; its data stays")
        record()
        if settings.ceph_enabled:
            _say("Starting Ceph (monitor, OSD, RADOS gateway); this takes about 15 s")
            ceph = CephCluster(os.path.join(state_dir, "ceph"), settings.rgw_port, report=_say,
                               store=settings.ceph_store)
            ceph.start()
            record()
        if settings.kafka_enabled and not settings.kafka_bootstrap:
            if settings.kafka_broker == "apache-kafka":
                _say("Starting Apache Kafka (KRaft, one JVM); this takes about 5 s")
                kafka = ApacheKafkaBroker(os.path.join(state_dir, "apache-kafka"), settings.kafka_port,
                                          report=_say).start()
            else:
                kafka = KafkaBroker(os.path.join(state_dir, "kafka"), settings.kafka_port, report=_say).start()
            record()
        hub = HubProcess(runtime_settings(settings, state_dir, ceph, kafka), report=_say)
        hub.start()
        record()
        if settings.prometheus_enabled:
            _say("Starting Prometheus (scraping the hub and the platform service every 5 s)")
            prometheus = PrometheusProcess(
                os.path.join(state_dir, "prometheus"), hub_url=hub.url, platform_url=hub.runtime["platform_url"],
                token=hub.runtime["prometheus_token"], rules_files=[settings.prometheus_rules_file or RULES_FILE],
                port=settings.prometheus_port, retention=settings.prometheus_retention, report=_say).start()
            record()
        prebuild_envs(profiles)  # in the background: the hub is up meanwhile, a first spawn waits for its build
        stop.running = True
        _banner(hub.url, users, ceph.endpoint if ceph else "", hub.log_path,
                hub.runtime.get("kafka_bootstrap", ""), prometheus.url if prometheus else "")
        if not wait:
            return 0
        hub_budget = RestartBudget()
        while not stop.is_set():
            if ceph is not None:
                ceph.supervise()
            if kafka is not None:
                kafka.supervise()
            if prometheus is not None:
                prometheus.supervise()
            if hub.proc.poll() is not None and not stop.is_set():
                stop.running = False  # Ctrl-C while the hub starts again unwinds at once, as at start-up
                try:
                    if not restart_hub(hub, hub_budget):
                        return 1
                finally:
                    stop.running = True
            record()
            time.sleep(0.5)
        return 0
    except KeyboardInterrupt:
        return 130
    except runrecord.LauncherRunning as e:
        _say(f"error: {e}")
        return 1
    except Exception as e:  # a clear message, then clean up everything we started
        _say(f"error: {e}")
        return 1
    finally:
        stop.running = True  # a second Ctrl-C must not interrupt the cleanup
        if prometheus is not None:
            _say("Stopping Prometheus")
            prometheus.stop()
        if hub is not None:
            _say("Stopping JupyterHub (servers, proxy, idle culler)")
            hub.stop()
        if kafka is not None:
            _say("Stopping the Kafka broker")
            kafka.stop()
        if ceph is not None:
            _say("Stopping Ceph")
            ceph.stop()
        if hub is not None or ceph is not None or kafka is not None or prometheus is not None:
            _say("Stopped; nothing left running")
        if owns_record:
            runrecord.clear(state_dir)


def restart_hub(hub: HubProcess, budget: RestartBudget) -> bool:
    """The hub exited on its own: stop its orphaned services and start it again with the same settings (same
    URLs, ports and proxy token), so users' running servers, which the hub's database records, carry on."""
    how = exit_text(hub.proc.returncode)
    if not budget.spend():
        _say(f"JupyterHub keeps exiting ({len(budget.times)} times in {budget.window:.0f}s, last with {how}); "
             f"giving up; see {hub.log_path}")
        return False
    old = hub.proc.pid
    orphans = hub.recover()
    _say(f"JupyterHub (pid {old}) exited unexpectedly ({how}); restarting it on the same addresses "
         f"(stopped {len(orphans)} orphaned service process(es); users' servers keep running)")
    hub.start()
    _say(f"JupyterHub restarted as pid {hub.proc.pid}")
    return True


def _banner(url: str, users, s3_endpoint: str, log_path: str, kafka: str = "", prometheus: str = "") -> None:
    lines = ["", "=" * 64, f"  odh-hub is running:  {url}", "", "  Log in as:"]
    for u in users.values():
        hint = f" ({u.login_hint})" if u.login_hint else ""
        groups = ", ".join(u.groups) or "no groups"
        lines.append(f"    {u.name:<10} groups: {groups}{' [admin]' if u.admin else ''}{hint}")
    if s3_endpoint:
        lines.append(f"\n  Ceph RGW (S3): {s3_endpoint}")
    if kafka:
        lines.append(f"  Kafka (bootstrap): {kafka}")
    if prometheus:
        lines.append(f"  Prometheus: {prometheus}  (alerts: {prometheus}/alerts)")
    if any(u.admin for u in users.values()):
        lines.append(f"  Admin view (admins): {url.rstrip('/')}/services/odh-platform/admin/")
    lines += [f"  Hub log: {log_path}", "  Press Ctrl-C to stop everything.", "=" * 64, ""]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(up(sys.argv[1], sys.argv[2]))


def prebuild_envs(profiles) -> threading.Thread | None:
    """Build the lock environments of these profiles in a background thread (each once; cached). A spawn that
    needs one meanwhile waits on the same build's file lock."""
    from odh_spawner.host.environments import EnvBuildError, LockEnvironments, LockError, lock_envs_of

    locks = lock_envs_of(profiles)
    if not locks:
        return None

    def run():
        envs = LockEnvironments()
        for lock, slug in locks.items():
            try:
                if envs.cached(lock) is None:
                    _say(f"Preparing the {slug} environment from {lock} in the background (first time only)")
                    built = envs.ensure(lock, log=lambda _m: None)
                    _say(f"The {slug} environment is ready ({built.seconds:.0f} s): {built.path}")
            except (LockError, EnvBuildError) as e:
                _say(f"warning: the {slug} environment could not be built: {e}")

    thread = threading.Thread(target=run, name="odh-env-prebuild", daemon=True)
    thread.start()
    return thread
