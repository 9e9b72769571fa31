//! Leader election on a Kubernetes `Lease` (coordination.k8s.io/v1), as client-go does it, so
//! that two replicas of the controller never both act.
//!
//! Each candidate reads the Lease every `retry_period`. The holder renews it (`renewTime`) with a
//! replace carrying the `resourceVersion` it read, so a concurrent writer gets 409 Conflict and
//! loses. Another candidate takes the Lease only once the record it observed has not changed
//! for `lease_duration` — measured on its own clock, so clock skew between nodes does not matter.
//! A leader that cannot renew for `renew_deadline` (shorter than `lease_duration`) stops acting
//! before anyone else may start.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::chrono::Utc;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;

use super::ControllerError;

/// Timing of the election (client-go's defaults are 15 s / 10 s / 2 s).
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// Lease object name.
    pub name: String,
    /// This candidate's identity (the pod name).
    pub identity: String,
    /// How long a Lease is valid without renewal.
    pub lease_duration: Duration,
    /// A leader that could not renew for this long steps down.
    pub renew_deadline: Duration,
    /// How often to try to acquire or renew.
    pub retry_period: Duration,
}

impl LeaseSettings {
    /// client-go's defaults.
    pub fn new(name: impl Into<String>, identity: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// retry < renew deadline < lease duration, or the guarantee does not hold.
    pub fn validate(&self) -> Result<(), ControllerError> {
        if self.identity.is_empty() || self.name.is_empty() {
            return Err(ControllerError::Config(
                "leader election needs a lease name and an identity".into(),
            ));
        }
        if !(self.retry_period < self.renew_deadline && self.renew_deadline < self.lease_duration) {
            return Err(ControllerError::Config(format!(
                "leader election: expected retry period ({:?}) < renew deadline ({:?}) < lease duration ({:?})",
                self.retry_period, self.renew_deadline, self.lease_duration
            )));
        }
        Ok(())
    }
}

/// One candidate.
pub struct LeaderElector {
    api: Api<Lease>,
    settings: LeaseSettings,
    /// (holder, renew time) last seen and when it was first seen with that value.
    observed: Option<((String, Option<String>), Instant)>,
    last_renewed: Option<Instant>,
    leading: bool,
}

impl LeaderElector {
    /// A candidate for the Lease in `api`'s namespace.
    pub fn new(api: Api<Lease>, settings: LeaseSettings) -> Result<Self, ControllerError> {
        settings.validate()?;
        Ok(Self {
            api,
            settings,
            observed: None,
            last_renewed: None,
            leading: false,
        })
    }

    /// Whether this candidate leads (as of the last step).
    pub fn is_leading(&self) -> bool {
        self.leading
    }

    /// One attempt to acquire or renew; returns whether this candidate may act.
    pub async fn step(&mut self) -> bool {
        match self.try_acquire_or_renew().await {
            Ok(true) => {
                if !self.leading {
                    tracing::info!(identity = %self.settings.identity, lease = %self.settings.name, "became the leader");
                }
                self.leading = true;
                self.last_renewed = Some(Instant::now());
            }
            Ok(false) => {
                if self.leading {
                    tracing::warn!(identity = %self.settings.identity, "lost the lease");
                }
                self.leading = false;
            }
            Err(e) => {
                tracing::warn!(error = %e, "lease: cannot reach the API server");
            }
        }
        if self.leading
            && self
                .last_renewed
                .is_none_or(|t| t.elapsed() >= self.settings.renew_deadline)
        {
            tracing::warn!(identity = %self.settings.identity, "could not renew within the deadline; stepping down");
            self.leading = false;
        }
        self.leading
    }

    async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let me = self.settings.identity.clone();
        let now = MicroTime(Utc::now());
        // Whole seconds on the wire: round up, so others never see a shorter lease than ours.
        let duration_s =
            i32::try_from(self.settings.lease_duration.as_secs_f64().ceil().max(1.0) as u64)
                .unwrap_or(i32::MAX);
        let Some(existing) = self.api.get_opt(&self.settings.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.settings.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me),
                    lease_duration_seconds: Some(duration_s),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = existing.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let record = (
            holder.clone(),
            spec.renew_time.as_ref().map(|t| t.0.to_rfc3339()),
        );
        let observed_at = match &self.observed {
            Some((r, at)) if *r == record => *at,
            _ => {
                let at = Instant::now();
                self.observed = Some((record, at));
                at
            }
        };
        let valid_for = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(self.settings.lease_duration, Duration::from_secs);
        if !holder.is_empty() && holder != me && observed_at.elapsed() < valid_for {
            return Ok(false);
        }
        let changed_hands = holder != me;
        let mut lease = existing;
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(me),
            lease_duration_seconds: Some(duration_s),
            acquire_time: if changed_hands {
                Some(now.clone())
            } else {
                spec.acquire_time
            },
            renew_time: Some(now),
            lease_transitions: Some(spec.lease_transitions.unwrap_or(0) + i32::from(changed_hands)),
        });
        // The replace carries the resourceVersion read above: a concurrent writer makes it 409.
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Give the Lease up (on shutdown), so another candidate takes over at once.
    pub async fn release(&mut self) {
        if !self.leading {
            return;
        }
        self.leading = false;
        let Ok(Some(mut lease)) = self.api.get_opt(&self.settings.name).await else {
            return;
        };
        let mine = lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            == Some(self.settings.identity.as_str());
        if !mine {
            return;
        }
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(Utc::now()));
        }
        if let Err(e) = self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
        {
            tracing::warn!(error = %e, "cannot release the lease");
        } else {
            tracing::info!(identity = %self.settings.identity, "released the lease");
        }
    }

    /// Campaign until `stop`, publishing leadership on `tx`; releases the Lease at the end.
    pub async fn run(mut self, tx: watch::Sender<bool>, stop: impl Future<Output = ()> + Send) {
        tokio::pin!(stop);
        loop {
            let leading = self.step().await;
            tx.send_replace(leading);
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep(self.settings.retry_period) => {}
            }
        }
        tx.send_replace(false);
        self.release().await;
    }
}
