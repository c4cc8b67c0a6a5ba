//! What every reconcile shares: the Kubernetes client, the AWS clients (one per access role
//! and resource session, made once) and the per-account Access Analyzer turns.

use crate::aws::access_analyzer::AccessAnalyzer;
use crate::aws::iam::Iam;
use crate::aws::s3::S3Location;
use crate::aws::{RateLimiter, Session, assume_role, athena, s3};
use crate::controller::crd::{
    AthenaTrailSource, ClusterTrailSpec, FactStoreSpec, LeastPrivilegeRole,
};
use crate::controller::leader::WriteGuard;
use crate::controller::queue::AccountQueue;
use crate::controller::spec::Limits;
use crate::controller::telemetry::Metrics;
use crate::sources::athena::AthenaIngester;
use crate::sources::ingest::{FactStore, Ingester};
use crate::time::Instant;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The share of `--aws-rate-limit` the resources of one namespace may use together.
pub const NAMESPACE_SHARE_PERCENT: u32 = 50;

/// An assumed-role session: (role ARN, session, ExternalId).
type AssumedKey = (String, Session, Option<String>);

/// AWS clients per `assumeRoleArn` (none: the operator's own credentials), made once, and
/// the turns resources of one account take at Access Analyzer's one generation job.
pub struct Aws {
    base: aws_config::SdkConfig,
    limiter: Option<Arc<RateLimiter>>,
    /// Calls per second one namespace's resources may make together: a share of the budget,
    /// so one tenant (a refusal loop, a flood of resources) leaves the rest to the others.
    namespace_rate: u32,
    namespace_limiters: Mutex<HashMap<String, Arc<RateLimiter>>>,
    /// Assumed-role configurations by (role ARN, session, ExternalId).
    assumed: tokio::sync::Mutex<HashMap<AssumedKey, aws_config::SdkConfig>>,
    /// Access role ARN → the ExternalId the tenancy configuration gives it, as last read.
    external_ids: Mutex<HashMap<String, String>>,
    analyzer_poll_secs: u64,
    generation_turns: Mutex<AccountQueue>,
    /// Per account, until when Access Analyzer's daily job quota is used up (next 00:00 UTC):
    /// no job is started before then.
    pub(super) quota_until: Mutex<HashMap<String, Instant>>,
}

impl Aws {
    /// `calls_per_second` limits IAM calls across all resources (0: unlimited);
    /// `analyzer_poll_secs` spaces polls of a running generation job.
    pub fn new(base: aws_config::SdkConfig, calls_per_second: u32, analyzer_poll_secs: u64) -> Aws {
        Aws {
            base,
            limiter: RateLimiter::per_second(calls_per_second).map(Arc::new),
            namespace_rate: (calls_per_second * NAMESPACE_SHARE_PERCENT).div_ceil(100),
            namespace_limiters: Default::default(),
            assumed: Default::default(),
            external_ids: Default::default(),
            analyzer_poll_secs,
            // Waiting resources ask every poll; a few missed polls lose the place.
            generation_turns: Mutex::new(AccountQueue::new(Duration::from_secs(
                (analyzer_poll_secs * 10).max(300),
            ))),
            quota_until: Default::default(),
        }
    }

    pub(super) fn analyzer_poll_secs(&self) -> u64 {
        self.analyzer_poll_secs
    }

    pub(super) fn turns(&self) -> std::sync::MutexGuard<'_, AccountQueue> {
        self.generation_turns.lock().expect("not poisoned")
    }

    pub(super) async fn analyzer(&self, lpr: &LeastPrivilegeRole) -> AccessAnalyzer {
        let config = self.config(lpr).await;
        AccessAnalyzer::new(&config, self.limits(lpr))
    }

    /// The SDK configuration for `lpr`: the operator's own, or a session of its
    /// `assumeRoleArn` named for the resource (one per role and resource, kept).
    pub(super) async fn config(&self, lpr: &LeastPrivilegeRole) -> aws_config::SdkConfig {
        let Some(arn) = lpr
            .spec
            .assume_role_arn
            .as_deref()
            .filter(|a| !a.is_empty())
        else {
            return self.base.clone();
        };
        let session = Session::of_resource(&lpr.namespace().unwrap_or_default(), &lpr.name_any());
        let external_id = self
            .external_ids
            .lock()
            .expect("not poisoned")
            .get(arn)
            .cloned();
        let key = (arn.to_string(), session.clone(), external_id.clone());
        let mut assumed = self.assumed.lock().await;
        if let Some(config) = assumed.get(&key) {
            return config.clone();
        }
        let config = assume_role(&self.base, arn, &session, external_id.as_deref()).await;
        assumed.insert(key, config.clone());
        config
    }

    /// Records the ExternalId to send when assuming `arn` (none: send none).
    pub(super) fn set_external_id(&self, arn: &str, id: Option<String>) {
        let mut ids = self.external_ids.lock().expect("not poisoned");
        match id {
            Some(id) => ids.insert(arn.to_string(), id),
            None => ids.remove(arn),
        };
    }

    /// `lpr`'s namespace's share of the budget, then the budget.
    fn limits(&self, lpr: &LeastPrivilegeRole) -> crate::aws::Limits {
        let shared = crate::aws::Limits::shared(self.limiter.clone());
        if self.limiter.is_none() {
            return shared;
        }
        let namespace = lpr.namespace().unwrap_or_default();
        let mut limiters = self.namespace_limiters.lock().expect("not poisoned");
        let share = limiters.entry(namespace).or_insert_with(|| {
            Arc::new(RateLimiter::per_second(self.namespace_rate.max(1)).expect("at least 1"))
        });
        shared.within(Some(Arc::clone(share)))
    }

    pub(super) async fn iam(&self, lpr: &LeastPrivilegeRole) -> Iam {
        let config = self.config(lpr).await;
        Iam::new(&config, self.limits(lpr))
    }

    pub(super) async fn athena(
        &self,
        lpr: &LeastPrivilegeRole,
        region: Option<&str>,
    ) -> aws_sdk_athena::Client {
        athena::client(&self.config_in(lpr, region).await)
    }

    pub(super) async fn s3(
        &self,
        lpr: &LeastPrivilegeRole,
        region: Option<&str>,
    ) -> aws_sdk_s3::Client {
        s3::client(&self.config_in(lpr, region).await)
    }

    /// An S3 client with the operator's own identity in `region` (none: its own), for what the
    /// operator keeps for itself (the fact store), whoever the resource is.
    pub(super) fn own_s3(&self, region: Option<&str>) -> aws_sdk_s3::Client {
        let config = match region {
            Some(region) => (self.base.to_builder())
                .region(aws_config::Region::new(region.to_string()))
                .build(),
            None => self.base.clone(),
        };
        s3::client(&config)
    }

    /// [`Aws::config`] in `region` (none: the configuration's own).
    async fn config_in(
        &self,
        lpr: &LeastPrivilegeRole,
        region: Option<&str>,
    ) -> aws_config::SdkConfig {
        let config = self.config(lpr).await;
        match region {
            Some(region) => config
                .to_builder()
                .region(aws_config::Region::new(region.to_string()))
                .build(),
            None => config,
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    pub client: kube::Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub aws: Aws,
    /// The operator's own namespace, where the backups live (out of the tenants' reach).
    pub backup_namespace: String,
    /// What every resource is allowed, whatever its spec says.
    pub limits: Limits,
    /// With leader election: checked before every AWS write, so a leader that may have lost
    /// its lease stops writing at once.
    pub write_guard: Option<WriteGuard>,
    /// Consecutive failures per resource, for backoff.
    pub(super) failures: Mutex<HashMap<(String, String), u32>>,
    /// One ingester per trail and the identity it is read with, shared by every resource
    /// that reads it: each file is downloaded once for all of them.
    ingesters: Mutex<Shared<TrailKey, Ingester>>,
    /// One Athena ingester per table and the identity it is asked with.
    athena_ingesters: Mutex<Shared<AthenaKey, AthenaIngester>>,
    /// The facts every ingester together may hold (`sources::facts::MAX_FACTS_TOTAL`).
    fact_budget: Arc<crate::sources::facts::FactBudget>,
    /// The resources as the controller last saw them: who else reads a ClusterTrail, so that
    /// one query answers them all.
    roles: Option<Store<LeastPrivilegeRole>>,
    /// Refused calls the signal queue brought, for the restore.
    pub refusals: Arc<crate::controller::signals::Refusals>,
    /// `--require-tenancy`: without the tenancy ConfigMap nothing is permitted.
    pub require_tenancy: bool,
    /// What every status is sealed with.
    pub status_key: crate::controller::seal::StatusKey,
    /// AWS managed policies' documents, shared by every resource.
    pub(super) managed_documents: ManagedDocuments,
}

/// How long an AWS managed policy's document read from IAM is used before it is read again.
pub const MANAGED_DOCUMENTS_FRESH_FOR: Duration = Duration::from_secs(3600);
/// AWS managed policies' documents kept (AWS publishes about 1,300).
pub const MAX_MANAGED_DOCUMENTS: usize = 4096;

/// AWS managed policies' documents as last read from IAM, by ARN: the same for every role of
/// a partition, and changed by AWS a few times a year. A workload looping on a refused call
/// makes its resource look again each debounce interval, and each look needs the role's
/// original documents: read from here, they cost the IAM budget the tenants share nothing.
#[derive(Default)]
pub struct ManagedDocuments {
    by_arn: Mutex<HashMap<String, (std::time::Instant, crate::policy::Policy)>>,
}

impl ManagedDocuments {
    /// `arn`'s document, if read less than [`MANAGED_DOCUMENTS_FRESH_FOR`] before `now`.
    pub(super) fn get(&self, arn: &str, now: std::time::Instant) -> Option<crate::policy::Policy> {
        let by_arn = self.by_arn.lock().expect("not poisoned");
        let (read, document) = by_arn.get(arn)?;
        (now.saturating_duration_since(*read) < MANAGED_DOCUMENTS_FRESH_FOR)
            .then(|| document.clone())
    }

    /// Keeps `document` as `arn`'s, read at `now`; past [`MAX_MANAGED_DOCUMENTS`], the stale
    /// go first, then all.
    pub(super) fn put(&self, arn: &str, document: crate::policy::Policy, now: std::time::Instant) {
        let mut by_arn = self.by_arn.lock().expect("not poisoned");
        if by_arn.len() >= MAX_MANAGED_DOCUMENTS && !by_arn.contains_key(arn) {
            by_arn.retain(|_, (read, _)| {
                now.saturating_duration_since(*read) < MANAGED_DOCUMENTS_FRESH_FOR
            });
            if by_arn.len() >= MAX_MANAGED_DOCUMENTS {
                by_arn.clear();
            }
        }
        by_arn.insert(arn.to_string(), (now, document));
    }
}

/// Ingesters shared by the resources reading one source, each kept only while some resource
/// (by uid) last asked for it: a tenant naming bucket after bucket holds one ingester, not one
/// per bucket it ever named, and a deleted resource's ingester goes with it.
pub(super) struct Shared<K, V> {
    by_key: HashMap<K, Arc<tokio::sync::Mutex<V>>>,
    /// Each resource's (uid's) source, as last asked.
    users: HashMap<String, K>,
}

impl<K, V> Default for Shared<K, V> {
    fn default() -> Self {
        Shared {
            by_key: HashMap::new(),
            users: HashMap::new(),
        }
    }
}

impl<K: Clone + Eq + std::hash::Hash, V> Shared<K, V> {
    /// The ingester of `key` for the resource `user`, made by `make` on first use; whatever
    /// `user` used before and no one else uses is let go.
    fn get(&mut self, key: K, user: &str, make: impl FnOnce() -> V) -> Arc<tokio::sync::Mutex<V>> {
        self.users.insert(user.to_string(), key.clone());
        self.evict();
        let made = self.by_key.entry(key);
        Arc::clone(made.or_insert_with(|| Arc::new(tokio::sync::Mutex::new(make()))))
    }

    /// `user` is gone (deleted): its ingester goes unless another resource uses it.
    fn forget(&mut self, user: &str) {
        self.users.remove(user);
        self.evict();
    }

    fn evict(&mut self) {
        let used: std::collections::HashSet<&K> = self.users.values().collect();
        self.by_key.retain(|key, _| used.contains(key));
    }

    fn len(&self) -> usize {
        self.by_key.len()
    }
}

/// What makes two resources' Athena tables the same: the table, and who asks.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct AthenaKey {
    pub reader: Option<String>,
    pub source: AthenaTrailSource,
}

/// What makes two resources' trails the same: where it is, and who reads it (the operator, or
/// an access role): facts read with one identity are never answered to another.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct TrailKey {
    pub reader: Option<String>,
    pub region: Option<String>,
    pub location: S3Location,
    /// Where its facts are kept besides memory.
    pub store: Option<FactStoreSpec>,
}

impl Context {
    pub fn new(
        client: kube::Client,
        recorder: Recorder,
        metrics: Arc<Metrics>,
        aws: Aws,
        backup_namespace: String,
        limits: Limits,
        write_guard: Option<WriteGuard>,
    ) -> Self {
        Context {
            client,
            recorder,
            metrics,
            aws,
            backup_namespace,
            limits,
            write_guard,
            failures: Default::default(),
            ingesters: Default::default(),
            athena_ingesters: Default::default(),
            fact_budget: crate::sources::facts::FactBudget::new(
                crate::sources::facts::MAX_FACTS_TOTAL,
            ),
            roles: None,
            refusals: Default::default(),
            require_tenancy: false,
            // Until [`Context::sealing_with`] gives the kept one: a key of this process alone.
            status_key: crate::controller::seal::StatusKey::generate(),
            managed_documents: Default::default(),
        }
    }

    /// Seals statuses with `key` (the one kept in the operator's namespace).
    pub fn sealing_with(mut self, key: crate::controller::seal::StatusKey) -> Self {
        self.status_key = key;
        self
    }

    /// Requires the tenancy ConfigMap (`--require-tenancy`).
    pub fn requiring_tenancy(mut self, required: bool) -> Self {
        self.require_tenancy = required;
        self
    }

    /// The controller's view of every resource, for [`Context::athena_principals`].
    pub fn with_roles(mut self, roles: Store<LeastPrivilegeRole>) -> Self {
        self.roles = Some(roles);
        self
    }

    /// The Athena ingester of `key`'s table for the resource `uid`, made on first use.
    pub(super) fn athena_ingester(
        &self,
        key: AthenaKey,
        uid: &str,
    ) -> Arc<tokio::sync::Mutex<AthenaIngester>> {
        let mut ingesters = self.athena_ingesters.lock().expect("not poisoned");
        let workgroup = athena::Workgroup {
            workgroup: key.source.workgroup.clone(),
            database: None,
            output_location: key.source.output_location.clone(),
        };
        let table = format!("{}.{}", key.source.database, key.source.table);
        let budget = Arc::clone(&self.fact_budget);
        let ingester = ingesters.get(key, uid, || {
            AthenaIngester::new(workgroup, table).with_budget(budget)
        });
        self.metrics.set_ingesters("athena", ingesters.len());
        ingester
    }

    /// The resource `uid` is gone: the ingesters only it used go too.
    pub(super) fn forget_ingesters(&self, uid: &str) {
        let mut trails = self.ingesters.lock().expect("not poisoned");
        trails.forget(uid);
        self.metrics.set_ingesters("trail", trails.len());
        let mut athena = self.athena_ingesters.lock().expect("not poisoned");
        athena.forget(uid);
        self.metrics.set_ingesters("athena", athena.len());
    }

    /// The roles in `account` of the other resources naming `lpr`'s ClusterTrail, as far as
    /// their specs say.
    pub(super) fn athena_principals(
        &self,
        lpr: &LeastPrivilegeRole,
        trail: &ClusterTrailSpec,
        account: &str,
    ) -> std::collections::BTreeSet<String> {
        let (Some(roles), Some(name)) = (&self.roles, &lpr.spec.cloud_trail.cluster_trail) else {
            return Default::default();
        };
        // Resources reaching their role through an access role are in its account; the rest
        // are in the operator's, which is this one's when it has no access role.
        let operator_account =
            (lpr.spec.assume_role_arn.as_deref()).map_or(Some(account), |_| None);
        let state = roles.state();
        crate::controller::spec::principals_reading(
            state.iter().map(|r| r.as_ref()),
            name,
            trail,
            account,
            operator_account,
        )
    }

    /// The ingester of `key`'s trail for the resource `uid`, made on first use.
    pub(super) fn ingester(&self, key: TrailKey, uid: &str) -> Arc<tokio::sync::Mutex<Ingester>> {
        let mut ingesters = self.ingesters.lock().expect("not poisoned");
        let ingester = ingesters.get(key.clone(), uid, || {
            let mut ingester =
                Ingester::new(key.location.clone()).with_budget(Arc::clone(&self.fact_budget));
            // Validated: the location parses.
            if let Some((spec, store)) = (key.store.as_ref())
                .and_then(|spec| Some((spec, spec.location.parse::<S3Location>().ok()?)))
            {
                let client = self.aws.own_s3(spec.region.as_deref());
                ingester = ingester.with_store(FactStore::new(
                    client,
                    &store,
                    &key.location,
                    key.region.as_deref(),
                    key.reader.as_deref(),
                ));
            }
            ingester
        });
        self.metrics.set_ingesters("trail", ingesters.len());
        ingester
    }

    pub(super) fn backups(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), &self.backup_namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::{MANAGED_DOCUMENTS_FRESH_FOR, MAX_MANAGED_DOCUMENTS, ManagedDocuments, Shared};

    /// A refusal loop's looks read AWS managed documents from memory for an hour, not from
    /// IAM's shared budget; the memory is bounded.
    #[test]
    fn managed_documents_are_read_from_memory_while_fresh_and_bounded() {
        let documents = ManagedDocuments::default();
        let admin = "arn:aws:iam::aws:policy/AdministratorAccess";
        let policy = crate::policy::Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        )
        .unwrap();
        let t0 = std::time::Instant::now();
        assert_eq!(documents.get(admin, t0), None);
        documents.put(admin, policy.clone(), t0);
        let later = |secs| t0 + std::time::Duration::from_secs(secs);
        assert_eq!(documents.get(admin, later(3599)), Some(policy.clone()));
        assert_eq!(documents.get(admin, t0 + MANAGED_DOCUMENTS_FRESH_FOR), None);
        for n in 0..MAX_MANAGED_DOCUMENTS + 10 {
            documents.put(&format!("arn:aws:iam::aws:policy/P{n}"), policy.clone(), t0);
        }
        assert!(documents.by_arn.lock().unwrap().len() <= MAX_MANAGED_DOCUMENTS);
    }

    /// A tenant naming bucket after bucket holds one ingester, not one per bucket it named;
    /// an ingester two resources share stays until both are gone.
    #[test]
    fn an_ingester_lives_while_some_resource_uses_it() {
        let mut shared: Shared<String, u32> = Shared::default();
        let a = shared.get("bucket-a".into(), "uid-1", || 1);
        shared.get("bucket-a".into(), "uid-2", || 2);
        assert_eq!(shared.len(), 1);
        for n in 0..100 {
            shared.get(format!("hostile-{n}"), "uid-3", || 3);
        }
        assert_eq!(shared.len(), 2, "bucket-a and uid-3's last bucket");
        // uid-1 moves to another bucket: bucket-a stays for uid-2, the same ingester.
        shared.get("bucket-b".into(), "uid-1", || 4);
        let again = shared.get("bucket-a".into(), "uid-2", || 5);
        assert!(std::sync::Arc::ptr_eq(&a, &again));
        shared.forget("uid-2");
        shared.forget("uid-3");
        assert_eq!(shared.len(), 1, "only bucket-b, for uid-1");
        shared.forget("uid-1");
        assert_eq!(shared.len(), 0);
    }
}
