"""Every check of Polaris and kube-score, and what answers it here.

A check is either a `Counterpart` (our policy rules that cover it, with the
upstream fixtures that show it) or a one-line status saying why no policy
rule does (checkov does, it does not apply to this platform, or we decided
otherwise). tests/test_upstream_fixtures.py runs the fixtures through the
rules; docs/validation.md has the same table for people, and a test keeps
the two in step. Fixtures we judge differently from upstream on purpose are
listed per check; each names its entry under "Decided differently" in
docs/validation.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Counterpart:
    """Our rules for one upstream check.

    rules: the rules whose findings answer the check.
    words: a finding counts only if its line matches this regular
        expression (for a rule that covers several checks, such as
        no_host_access).
    failures, successes: kube-score's fixtures by the grade its own tests
        expect (Polaris' are read from their names: failure* or success*).
    not_flagged: failure fixtures we pass on purpose.
    flagged: success fixtures we flag on purpose.
    decision: the "Decided differently" entry of docs/validation.md that
        explains not_flagged and flagged.
    """

    rules: tuple[str, ...]
    words: str = ""
    failures: tuple[str, ...] = ()
    successes: tuple[str, ...] = ()
    not_flagged: tuple[str, ...] = ()
    flagged: tuple[str, ...] = ()
    decision: str = ""


def _c(*rules: str, **kw) -> Counterpart:
    return Counterpart(rules=rules, **kw)


# Polaris' five exec/attach checks and three cluster-admin checks.
EXEC = {"words": r"exec or attach|contains '\*'|not in this render"}
EXEC_RULES = ("rbac_no_dangerous_grants", "rbac_no_wildcards")
ADMIN_RULES = ("no_admin_bindings", "rbac_no_wildcards")
# Roles with a `*` short of cluster-admin's three, and bindings Polaris
# exempts by name (system:, gce:): flagged here.
ADMIN_LOOKALIKES = ("success.explicit_apigroups.yaml", "success.explicit_resources.yaml", "success.explicit_verbs.yaml",
                    "success.gce_calico_binding.yaml", "success.system_prefix_binding.yaml")

# Polaris: pkg/config/checks/*.yaml (44 checks).
POLARIS: dict[str, Counterpart | str] = {
    "automountServiceAccountToken": _c("service_account_token_not_mounted"),
    "clusterrolePodExecAttach": _c(*EXEC_RULES, **EXEC, not_flagged=(
        "failure.attach_explicit.yaml", "failure.exec_explicit.yaml"), flagged=(
        "success.gce_calico_clusterrole.yaml", "success.system_prefix.yaml"), decision="rbac"),
    "clusterrolebindingClusterAdmin": _c(*ADMIN_RULES, flagged=ADMIN_LOOKALIKES, decision="rbac"),
    "clusterrolebindingPodExecAttach": _c(*EXEC_RULES, **EXEC, not_flagged=(
        "failure.binding_points_to_missing_ref.yaml",), flagged=(
        "success.defaultclusterrolebinding_clusteradmin.yaml",
        "success.defaultclusterrolebinding_system-controller-generic-garbage-collector.yaml",
        "success.gce_calico_binding.yaml", "success.system_prefix_binding.yaml"), decision="rbac"),
    "cpuLimitsMissing": "checkov CKV_K8S_11; the policy rules leave CPU limits optional (cpu-limits)",
    "cpuRequestsMissing": _c("resources_set", words="requests.cpu"),
    "dangerousCapabilities": _c("capabilities_dropped", "pod_hardening_extras", words="adds"),
    "deploymentMissingReplicas": _c("ha_replicas"),
    "hostIPCSet": _c("no_host_access", words="hostIPC"),
    "hostNetworkSet": _c("no_host_access", words="hostNetwork"),
    "hostPIDSet": _c("no_host_access", words="hostPID"),
    "hostPathSet": _c("no_host_access", words="hostPath"),
    "hostPortSet": _c("no_host_access", words="hostPort"),
    "hostProcess": _c("no_host_access", words="HostProcess"),
    "hpaMaxAvailability": _c("hpa_bounds"),
    "hpaMinAvailability": _c("ha_replicas", flagged=("success.minReplicaAbsent.yaml",), decision="replicas-floor"),
    "insecureCapabilities": _c("capabilities_dropped", words="drop", flagged=(
        "success.all.yaml", "success.case.yaml", "success.pod.yaml", "success.yaml"), decision="drop-all"),
    "linuxHardening": _c("capabilities_dropped", "pod_hardening_extras", flagged=(
        "success.apparmor_2_containers.yaml", "success.drop_capabilities.yaml",
        "success.seccomp_profile_container.yaml", "success.seccomp_profile_pod.yaml",
        "success.seccomp_profile_unconfined_for_pod_but_set_for_container.yaml",
        "success.selinux_container.yaml", "success.selinux_pod.yaml"), decision="linux-hardening"),
    "livenessProbeMissing": _c("probes_set", words="livenessProbe", not_flagged=("failure.yaml",),
                               decision="probes-serving"),
    "memoryLimitsMissing": _c("resources_set", words="limits.memory"),
    "memoryRequestsMissing": _c("resources_set", words="requests.memory"),
    "metadataAndInstanceMismatched": _c("instance_label_matches_name"),
    "missingNetworkPolicy": _c("networkpolicy_isolates_pods"),
    "missingPodDisruptionBudget": _c("pdb_allows_drain", words="has no PodDisruptionBudget"),
    "notReadOnlyRootFilesystem": _c("read_only_root_filesystem"),
    "pdbDisruptionsIsZero": _c("pdb_allows_drain", words="allows no"),
    "pdbMinAvailableGreaterThanHPAMinReplicas": _c("pdb_allows_drain", words="allows no", flagged=(
        "success.equals.yaml", "success.hpa-no-match.yaml", "success.no-hpa.yaml", "success.no-min-replicas.yaml"),
        decision="pdb-at-minimum"),
    "priorityClassNotSet": _c("priority_class_set"),
    "privilegeEscalationAllowed": _c("no_privilege_escalation"),
    "procMount": _c("pod_hardening_extras", words="procMount"),
    "pullPolicyNotAlways": "no rule: with an image pinned by digest, IfNotPresent is right (pull-policy)",
    "readinessProbeMissing": _c("probes_set", words="readinessProbe", not_flagged=("failure.yaml",),
                                decision="probes-serving"),
    "rolePodExecAttach": _c(*EXEC_RULES, **EXEC, not_flagged=(
        "failure.attach_explicit.yaml", "failure.exec_explicit.yaml"), flagged=(
        "success.gce_calico_binding.yaml", "success.system_prefix_binding.yaml"), decision="rbac"),
    "rolebindingClusterAdminClusterRole": _c(*ADMIN_RULES, flagged=ADMIN_LOOKALIKES, decision="rbac"),
    "rolebindingClusterAdminRole": _c(*ADMIN_RULES, flagged=ADMIN_LOOKALIKES, decision="rbac"),
    "rolebindingClusterRolePodExecAttach": _c(*EXEC_RULES, **EXEC, not_flagged=(
        "failure.binding_points_to_missing_ref.yaml",), flagged=(
        "success.gce_calico_binding.yaml", "success.system_prefix_binding.yaml"), decision="rbac"),
    "rolebindingRolePodExecAttach": _c(*EXEC_RULES, **EXEC, flagged=(
        "success.gce_calico_binding.yaml", "success.role_binding_cluster_role_binding.yaml",
        "success.system_prefix_binding.yaml"), decision="rbac"),
    "runAsPrivileged": _c("no_privileged"),
    "runAsRootAllowed": _c("run_as_non_root", flagged=("success.yaml",), decision="run-as-user"),
    "sensitiveConfigmapContent": _c("no_secret_literals"),
    "sensitiveContainerEnvVar": _c("no_secret_literals"),
    "tagNotSpecified": _c("image_pinned", flagged=("success.yaml",), decision="digests"),
    "tlsSettingsMissing": "not applicable: no Ingress; the Istio Gateway serves TLS (not-applicable)",
    "topologySpreadConstraint": _c("zone_spread", "spread_selects_own_pods", flagged=("success.yaml",),
                                   decision="zone-spread"),
}

# kube-score: README_CHECKS.md (39 checks); the fixtures under
# score/testdata/, graded as score/*_test.go expect.
KUBE_SCORE: dict[str, Counterpart | str] = {
    "deployment-strategy": _c("rolling_update", failures=("service-target-deployment-not-rolling.yaml",),
                              successes=("service-target-deployment.yaml",
                                         "service-target-deployment-strategy-not-set.yaml")),
    "deployment-replicas": _c("ha_replicas", failures=("service-target-deployment-replica-1.yaml",),
                              successes=("service-target-deployment.yaml",)),
    "ingress-targets-service": "not applicable: no Ingress (not-applicable)",
    "cronjob-has-deadline": "not applicable: no CronJobs (not-applicable)",
    "cronjob-restartpolicy": "not applicable: no CronJobs (not-applicable)",
    "container-resources": _c("resources_set", failures=(
        "pod-test-resources-none.yaml", "pod-test-resources-only-limits.yaml",
        "pod-test-resources-limits-and-requests-no-cpu-limit.yaml", "deployment-test-resources.yaml",
        "statefulset-test-resources.yaml"), successes=("pod-test-resources-limits-and-requests.yaml",),
        not_flagged=("pod-test-resources-limits-and-requests-no-cpu-limit.yaml",), decision="cpu-limits"),
    "container-resource-requests-equal-limits": _c("guaranteed_qos", failures=("pod-container-memory-requests.yaml",),
                                                   successes=("pod-test-resources-limits-and-requests.yaml",)),
    "container-cpu-requests-equal-limits": _c("guaranteed_qos", words="cpu"),
    "container-memory-requests-equal-limits": _c("guaranteed_qos", words="memory",
                                                 failures=("pod-container-memory-requests.yaml",)),
    "container-image-tag": _c("image_pinned", failures=("pod-image-tag-latest.yaml",),
                              successes=("pod-image-tag-fixed.yaml",), flagged=("pod-image-tag-fixed.yaml",),
                              decision="digests"),
    "container-image-pull-policy": "no rule: with an image pinned by digest, IfNotPresent is right (pull-policy)",
    "container-ephemeral-storage-request-and-limit": _c("ephemeral_storage_set", failures=(
        "pod-ephemeral-storage-missing-limit.yaml", "pod-ephemeral-storage-missing-request.yaml"),
        successes=("pod-ephemeral-storage-request-nomatch-limit.yaml",
                   "pod-ephemeral-storage-request-matches-limit.yaml")),
    "container-ephemeral-storage-request-equals-limit":
        "no rule: a limit above the request is how a pod's disk use may grow (ephemeral-storage-equal)",
    "container-ports-check": _c("container_ports_valid", failures=(
        "pod-container-ports-missing-containerport.yaml", "pod-container-ports-duplicate-names.yaml",
        "pod-container-ports-name-too-long.yaml"), successes=("pod-container-ports-ok.yaml",)),
    "environment-variable-key-duplication": _c("no_duplicate_env", failures=("pod-env-duplicated.yaml",),
                                               successes=("pod-env-ok.yaml",)),
    "statefulset-has-poddisruptionbudget": _c("pdb_allows_drain", words="has no PodDisruptionBudget", failures=(
        "statefulset-poddisruptionbudget-v1beta1-no-match.yaml",
        "statefulset-poddisruptionbudget-v1beta1-expression-no-match.yaml"), successes=(
        "statefulset-poddisruptionbudget-v1beta1-matches.yaml",
        "statefulset-poddisruptionbudget-v1beta1-expression-matches.yaml")),
    "deployment-has-poddisruptionbudget": _c("pdb_allows_drain", words="has no PodDisruptionBudget", failures=(
        "deployment-poddisruptionbudget-v1-no-match.yaml", "deployment-poddisruptionbudget-v1-different-namespace.yaml",
        "deployment-poddisruptionbudget-v1beta1-no-match.yaml",
        "deployment-poddisruptionbudget-v1beta1-expression-no-match.yaml"), successes=(
        "deployment-poddisruptionbudget-v1-matches.yaml", "deployment-poddisruptionbudget-v1beta1-matches.yaml",
        "deployment-poddisruptionbudget-v1beta1-expression-matches.yaml")),
    "poddisruptionbudget-has-policy": _c("pdb_has_policy", failures=(
        "deployment-poddisruptionbudget-v1-no-policy.yaml", "deployment-poddisruptionbudget-v1beta1-no-policy.yaml"),
        successes=("deployment-poddisruptionbudget-v1-matches.yaml",)),
    "pod-networkpolicy": _c("networkpolicy_isolates_pods", failures=(
        "networkpolicy-not-matching.yaml", "networkpolicy-matching-only-ingress.yaml",
        "networkpolicy-matching-only-egress.yaml", "networkpolicy-deployment-not-matching-selector.yaml",
        "networkpolicy-statefulset-not-matching-selector.yaml", "networkpolicy-cronjob-not-matching-selector.yaml"),
        successes=("networkpolicy-matching.yaml", "networkpolicy-deployment-matching.yaml",
                   "networkpolicy-statefulset-matching.yaml", "networkpolicy-cronjob-matching.yaml",
                   "networkpolicy-targets-all-pods.yaml"),
        flagged=("networkpolicy-matching.yaml", "networkpolicy-deployment-matching.yaml",
                 "networkpolicy-statefulset-matching.yaml", "networkpolicy-cronjob-matching.yaml"),
        decision="networkpolicy-rules"),
    "networkpolicy-targets-pod": _c("networkpolicy_selects_pods", failures=(
        "networkpolicy-targets-pod-not-matching.yaml", "networkpolicy-deployment-not-matching-selector.yaml",
        "networkpolicy-statefulset-not-matching-selector.yaml", "networkpolicy-cronjob-not-matching-selector.yaml"),
        successes=("networkpolicy-targets-pod.yaml", "networkpolicy-targets-pod-deployment.yaml",
                   "networkpolicy-deployment-matching.yaml", "networkpolicy-statefulset-matching.yaml",
                   "networkpolicy-cronjob-matching.yaml", "networkpolicy-targets-all-pods.yaml")),
    "pod-probes": _c("probes_set", words="without a", failures=(
        "pod-probes-all-missing.yaml", "pod-probes-missing-ready.yaml", "pod-probes-targeted-by-service.yaml",
        "pod-probes-targeted-by-service-same-namespace.yaml",
        "pod-probes-targeted-by-service-same-namespace-multi-labels.yaml"), successes=(
        "pod-probes-targeted-by-service-different-namespace.yaml", "pod-probes-not-targeted-by-service.yaml",
        "pod-probes-not-targeted-by-service-multi-labels.yaml", "pod-probes-on-different-containers.yaml",
        "pod-probes-on-different-containers-init.yaml")),
    "pod-probes-identical": _c("probes_set", words="same check", failures=(
        "pod-probes-identical-http.yaml", "pod-probes-identical-tcp.yaml", "pod-probes-identical-exec.yaml"),
        successes=("pod-probes-both.yaml",)),
    "container-security-context-user-group-id": _c("run_as_non_root", failures=(
        "pod-security-context-low-group-id.yaml", "pod-security-context-low-user-id.yaml",
        "pod-security-context-nosecuritycontext.yaml"), successes=("pod-security-context-all-good.yaml",),
        flagged=("pod-security-context-all-good.yaml",), decision="run-as-user"),
    "container-security-context-privileged": _c("no_privileged", failures=("pod-security-context-privileged.yaml",),
                                                successes=("pod-security-context-all-good.yaml",)),
    "container-security-context-readonlyrootfilesystem": _c("read_only_root_filesystem", failures=(
        "pod-security-context-writeablerootfilesystem.yaml", "pod-security-context-nosecuritycontext.yaml"),
        successes=("pod-security-context-all-good.yaml",)),
    "container-seccomp-profile": _c("seccomp_runtime_default", failures=(
        "pod-seccomp-no-annotation.yaml", "pod-seccomp-securecontext-warning.yaml",
        "pod-seccomp-container-securecontext-warning.yaml"), successes=(
        "pod-seccomp-securecontext-ok.yaml", "pod-seccomp-container-securecontext-ok.yaml",
        "pod-seccomp-annotated.yaml"),
        flagged=("pod-seccomp-annotated.yaml",), decision="seccomp-annotation"),
    "service-targets-pod": _c("service_selects_pods", failures=(
        "service-not-target-deployment.yaml", "service-not-target-pod.yaml", "service-not-target-pod-multi-label.yaml",
        "service-target-pod-different-namespace.yaml", "service-target-deployment-different-namespace.yaml"),
        successes=("service-target-deployment.yaml", "service-target-pod.yaml", "service-target-pod-multi-label.yaml",
                   "service-target-pod-same-namespace.yaml", "service-target-deployment-same-namespace.yaml",
                   "service-externalname.yaml")),
    "service-type": _c("service_not_exposed", failures=("service-type-nodeport.yaml",),
                       successes=("service-type-clusterip.yaml", "service-type-default.yaml")),
    "stable-version": _c("no_deprecated_apis", failures=(
        "statefulset-appsv1beta1.yaml", "statefulset-appsv1beta2.yaml", "deployment-extensions-v1beta1.yaml",
        "deployment-appsv1beta1.yaml", "deployment-appsv1beta2.yaml", "daemonset-appsv1beta2.yaml",
        "daemonset-extensionsv1beta1.yaml", "cronjob-batchv1beta1.yaml"),
        successes=("daemonset-appsv1.yaml", "cronjob-batchv1.yaml", "job-batchv1.yaml")),
    "deployment-has-host-podantiaffinity": _c("zone_spread", "spread_selects_own_pods", failures=(
        "deployment-host-antiaffinity-not-set.yaml", "deployment-host-antiaffinity-preffered-selector-no-match.yaml"),
        successes=("deployment-host-antiaffinity-preffered.yaml",
                   "deployment-host-antiaffinity-preffered-selector-expression.yaml",
                   "deployment-host-antiaffinity-required.yaml"),
        flagged=("deployment-host-antiaffinity-preffered.yaml",
                 "deployment-host-antiaffinity-preffered-selector-expression.yaml",
                 "deployment-host-antiaffinity-required.yaml"), decision="zone-spread"),
    "statefulset-has-host-podantiaffinity": _c("zone_spread", "spread_selects_own_pods", failures=(
        "statefulset-host-antiaffinity-not-set.yaml", "statefulset-host-antiaffinity-undefined-replicas.yaml"),
        successes=("statefulset-host-antiaffinity-preffered.yaml", "statefulset-host-antiaffinity-required.yaml"),
        flagged=("statefulset-host-antiaffinity-preffered.yaml", "statefulset-host-antiaffinity-required.yaml"),
        decision="zone-spread"),
    "deployment-targeted-by-hpa-does-not-have-replicas-configured": _c(
        "no_replicas_under_hpa", failures=("deployment-with-hpa-has-replicas.yaml",),
        successes=("deployment-with-hpa-not-has-replicas.yaml",)),
    "statefulset-has-servicename": "not applicable: no StatefulSets (not-applicable)",
    "deployment-pod-selector-labels-match-template-metadata-labels": _c("selector_matches_template"),
    "statefulset-pod-selector-labels-match-template-metadata-labels": _c(
        "selector_matches_template", failures=("statefulset-different-labels.yaml",)),
    "label-values": _c("valid_names_and_labels"),
    "horizontalpodautoscaler-has-target": _c("scale_targets_exist", failures=("hpa-has-no-target.yaml",), successes=(
        "hpa-autoscalingv1-targets-deployment.yaml", "hpa-autoscalingv2-targets-deployment.yaml",
        "hpa-autoscalingv2beta1-targets-deployment.yaml", "hpa-autoscalingv2beta2-targets-deployment.yaml")),
    "horizontalpodautoscaler-replicas": _c("ha_replicas", failures=("hpa-min-replicas-nok.yaml",),
                                           successes=("hpa-min-replicas-ok.yaml",)),
    "pod-topology-spread-constraints": _c("spread_selects_own_pods", failures=(
        "pod-topology-spread-constraints-no-labelselector.yaml",
        "pod-topology-spread-constraints-invalid-maxskew.yaml",
        "pod-topology-spread-constraints-invalid-mindomains.yaml",
        "pod-topology-spread-constraints-no-topologykey.yaml",
        "pod-topology-spread-constraints-invalid-whenunsatisfiable.yaml"), successes=(
        "pod-topology-spread-constraints-one-constraint.yaml", "pod-topology-spread-constraints-two-constraints.yaml")),
}
