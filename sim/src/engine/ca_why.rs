//! Why the cluster autoscaler did not act: why pending pods triggered no scale-up (no group
//! fits them, their group is at its maximum or backed off after a failed launch, a node is
//! still booting for them) and why a node that is (nearly) unneeded was not removed. Each
//! reason is a `no_scale_up` or `not_removed` event with a rule name and one sentence, logged
//! when it changes, never every scan.

use crate::cluster::{Cluster, NodeId};
use crate::results::{Event, EventKind, Why};
use crate::scenario::Requests;
use crate::time::SimTime;
use crate::units::DurationSpec;

/// A pending pod as the scale-up sees it: requests, allowed groups, priority, and the name of
/// what owns it (an API, a batch job, `overprovisioning`).
pub(super) type PendingPod = (Requests, Vec<usize>, i32, String);

/// One owner's pending pods that got no node, and why.
pub(super) struct Unserved {
    /// The owner (API, batch job, `overprovisioning`).
    pub owner: String,
    /// Pending pods of that owner left unserved.
    pub pods: usize,
    /// The rule's name: `no_group_fits`, `group_at_max`, `backed_off`, `node_booting`.
    pub rule: &'static str,
    /// The node group concerned when there is one.
    pub group: Option<String>,
    /// The reason per group, as a clause ("gpu at max_instances 2").
    pub detail: String,
    /// The same without times, to tell a new reason from a repeated one.
    pub key: String,
}

/// A clock for sentences: H:MM:SS since the run started.
pub(super) fn clock(t: SimTime) -> String {
    autoscaler::why::clock(t.as_duration())
}

/// Why no group could take `pod`: per allowed group, the first rule that rules it out.
/// `backoff_until` gives each group's backoff end.
pub(super) fn no_group(
    pod: &PendingPod,
    cluster: &Cluster,
    backoff_until: &[SimTime],
    now: SimTime,
) -> (&'static str, Option<String>, String, String) {
    let (requests, allowed, _, _) = pod;
    if allowed.is_empty() {
        let text = "the pod may use no node group".to_string();
        return ("no_group_fits", None, text.clone(), text);
    }
    let mut clauses = Vec::new();
    let mut keys = Vec::new();
    let mut rules = Vec::new();
    for &g in allowed {
        let spec = &cluster.groups()[g];
        let (rule, clause, key) = if cluster.plan_scale_up(g, &[*requests], 1).1 == 0 {
            let text = format!(
                "no node of {} fits the pod ({}m CPU, {} MiB, {} GPU)",
                spec.name, requests.cpu_m, requests.mem_mib, requests.gpu
            );
            ("no_group_fits", text.clone(), text)
        } else if cluster.nodes_per_group()[g] >= spec.max_instances {
            let text = format!("{} at max_instances {}", spec.name, spec.max_instances);
            ("group_at_max", text.clone(), text)
        } else if backoff_until[g] > now {
            (
                "backed_off",
                format!(
                    "{} backed off until {} after a failed launch",
                    spec.name,
                    clock(backoff_until[g])
                ),
                format!("{} backed off", spec.name),
            )
        } else {
            let text = format!("{} cannot take it", spec.name);
            ("no_group_fits", text.clone(), text)
        };
        rules.push((rule, spec.name.clone()));
        clauses.push(clause);
        keys.push(key);
    }
    let pick = ["group_at_max", "backed_off", "no_group_fits"]
        .into_iter()
        .find(|r| rules.iter().any(|(x, _)| x == r))
        .unwrap_or("no_group_fits");
    let groups: Vec<&String> = rules
        .iter()
        .filter(|(r, _)| *r == pick)
        .map(|(_, g)| g)
        .collect();
    let group = (groups.len() == 1).then(|| groups[0].clone());
    (pick, group, clauses.join("; "), keys.join("; "))
}

/// Group unserved pods by owner, in the order first seen, with the reason of the first pod.
pub(super) fn by_owner(
    pods: &[&PendingPod],
    reason: impl Fn(&PendingPod) -> (&'static str, Option<String>, String, String),
) -> Vec<Unserved> {
    let mut out: Vec<Unserved> = Vec::new();
    for pod in pods {
        if let Some(u) = out.iter_mut().find(|u| u.owner == pod.3) {
            u.pods += 1;
            continue;
        }
        let (rule, group, detail, key) = reason(pod);
        out.push(Unserved {
            owner: pod.3.clone(),
            pods: 1,
            rule,
            group,
            detail,
            key,
        });
    }
    out
}

/// The `no_scale_up` event of one owner's unserved pods.
pub(super) fn no_scale_up_event(u: &Unserved, now: SimTime) -> Event {
    let sentence = format!(
        "no scale-up for {} pending pod{} of {}: {}",
        u.pods,
        if u.pods == 1 { "" } else { "s" },
        u.owner,
        u.detail
    );
    Event {
        t_s: now.as_secs_f64(),
        kind: EventKind::NoScaleUp(Why {
            rule: u.rule.to_string(),
            sentence: sentence.clone(),
        }),
        api: Some(u.owner.clone()),
        node_group: u.group.clone(),
        message: sentence,
    }
}

/// A `not_removed` event about `node` (or about the whole pass when `node` is `None`).
pub(super) fn not_removed_event(
    rule: &str,
    sentence: String,
    node: Option<NodeId>,
    cluster: &Cluster,
    now: SimTime,
) -> Event {
    Event {
        t_s: now.as_secs_f64(),
        kind: EventKind::NotRemoved(Why {
            rule: rule.to_string(),
            sentence: sentence.clone(),
        }),
        api: None,
        node_group: node.map(|n| cluster.groups()[cluster.node(n).group].name.clone()),
        message: sentence,
    }
}

/// "node 3 of gpu".
pub(super) fn node_name(node: NodeId, cluster: &Cluster) -> String {
    format!(
        "node {} of {}",
        node.0,
        cluster.groups()[cluster.node(node).group].name
    )
}

/// A duration as the scenario writes it.
pub(super) fn span(t: SimTime) -> String {
    DurationSpec(t).to_string()
}
