"""What Kubernetes says about a starting pod, in user words (odh_spawner.spawners.pod_progress)."""

from odh_spawner.spawners.pod_progress import event_message, pod_failure


def test_scheduler_and_kubelet_events_in_user_words():
    assert event_message({"reason": "FailedScheduling", "message": "0/3 nodes are available: 3 Insufficient "
                          "nvidia.com/gpu."}) == ("Waiting for room in the cluster: 0/3 nodes are available: 3 "
                                                  "Insufficient nvidia.com/gpu.")
    assert event_message({"reason": "Scheduled", "message": "Successfully assigned odh/jupyter-alice to n1"}) == \
        "Your server was placed on a node"
    assert event_message({"reason": "Pulling", "message": 'Pulling image "x"'}) == "Downloading your server's image"
    assert event_message({"reason": "FailedMount"}) == "A volume of your server could not be mounted"
    assert event_message({"reason": "SandboxChanged", "message": "internal"}) is None
    assert event_message({}) is None


def test_a_pod_that_ended_before_it_was_ready():
    assert pod_failure(None) is None
    assert pod_failure({"status": {"phase": "Pending"}}) is None
    assert pod_failure({"status": {"phase": "Running"}}) is None
    assert pod_failure({"status": {"phase": "Failed", "reason": "Evicted", "message": "low on memory."}}) == (
        "Your server's pod stopped before it was ready (Failed: Evicted: low on memory.). Try again, or tell your "
        "platform admin.")
    terminated = {"phase": "Failed", "containerStatuses": [
        {"name": "notebook", "state": {"terminated": {"exitCode": 2}}}]}
    assert "(Failed: exit code 2)" in pod_failure({"status": terminated})
    oom = {"phase": "Failed", "containerStatuses": [{"state": {"terminated": {"exitCode": 137,
                                                                                "reason": "OOMKilled"}}}]}
    assert "(Failed: OOMKilled)" in pod_failure({"status": oom})
    assert "(Succeeded)" in pod_failure({"status": {"phase": "Succeeded"}})
