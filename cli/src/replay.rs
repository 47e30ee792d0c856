//! `infra-tickets replay`: re-drive the raw stream through triage after a policy or catalog
//! change.
//!
//! The real replay runs the production triage handler over a new durable consumer that starts
//! at the chosen point, against the same group states, so it is safe by construction: an event
//! that changes nothing publishes nothing, and jira-writer skips what it already applied.
//! `--diff` runs the same folding in memory, starting from the stored group states, and lists
//! which tickets would change, writing nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use bus::topology::{self, TRIAGE_GROUPS};
use bus::{CasError, JsonKv, Publisher, Readiness};
use catalog::Catalog;
use chrono::{DateTime, Utc};
use contracts::{DesiredTicket, PayloadKind, RawEvent, TicketState};
use futures_util::StreamExt;
use health_policy::{HealthPolicy, HealthSettings};
use service_kit::{Clock, NatsArgs};
use snyk_policy::{SnykPolicy, SnykSettings};
use tokio_util::sync::CancellationToken;
use triage_policy::{GroupRecord, Policy, PolicyError};

/// Re-drive raw events through triage.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Start at this sequence of the RAW_EVENTS stream.
    #[arg(long, conflicts_with = "from_time")]
    pub from_sequence: Option<u64>,
    /// Start at events stored at or after this time (RFC 3339). Without a start: everything kept.
    #[arg(long)]
    pub from_time: Option<DateTime<Utc>>,
    /// Only show which tickets would change (created, lane, due date, team, resolved); write nothing.
    #[arg(long)]
    pub diff: bool,
    /// Triage's group states were lost: fold the raw stream in memory and write each lost
    /// group's state once, publishing only its final desired tickets (a replay event by event
    /// would publish every state the group passed through, and JIRA would be edited back and
    /// forth). Groups whose state exists are left as they are.
    #[arg(long, conflicts_with = "diff")]
    pub rebuild: bool,
    /// Ownership catalog (TOML) to replay with; the deployed one.
    #[arg(long, env = "ITK_CATALOG")]
    pub catalog: Option<PathBuf>,
    #[arg(long, env = "ITK_DEFAULT_TEAM", default_value = "platform")]
    pub default_team: String,
    /// Hide the progress bar (for logs and tests).
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub snyk: SnykSettings,
    /// The KEV catalog, EPSS scores and policy profile to replay with (as triage's flags): with
    /// `--diff` and a new `--policy-profile`, the tickets whose lane or due date would move.
    #[command(flatten)]
    pub feeds: Box<triage::feeds::FeedArgs>,
    #[command(flatten)]
    pub health: HealthSettings,
}

/// The Snyk policy the flags describe: its profile and feeds loaded (a feed URL that cannot be
/// read falls back to the copy triage kept, when the topology has its store).
async fn snyk_policy(
    args: &ReplayArgs,
    catalog: Arc<Catalog>,
    js: &jetstream::Context,
) -> anyhow::Result<SnykPolicy> {
    let profile = triage::feeds::load_profile(&args.feeds, &args.snyk)?;
    // A topology without the store (older than it) replays with the feeds as fetched.
    let copies = triage::feeds::FeedCopies::for_feeds(&args.feeds, js)
        .await
        .unwrap_or_else(|_| triage::feeds::FeedCopies::none());
    let feeds = triage::feeds::load_feeds(&args.feeds, &copies).await?;
    Ok(SnykPolicy::new(catalog, args.snyk.clone()).with_profile(profile).with_feeds(feeds))
}

/// One ticket that a replay would change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TicketDiff {
    pub group_key: String,
    /// `created`, `resolved`, `reopened`, `team`, `lane`, `due date`, `content`.
    pub changes: Vec<String>,
    pub team: String,
    pub lane: String,
}

impl std::fmt::Display for TicketDiff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}  [{}]  {}", self.group_key, self.changes.join(", "), self.team)
    }
}

/// What a real replay did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplaySummary {
    pub events: u64,
    pub desired_published: u64,
}

fn catalog_of(args: &ReplayArgs) -> Result<Arc<Catalog>, catalog::CatalogError> {
    Ok(Arc::new(match &args.catalog {
        Some(path) => Catalog::load(path)?,
        None => Catalog::default_only(&args.default_team),
    }))
}

fn deliver_policy(args: &ReplayArgs) -> consumer::DeliverPolicy {
    match (args.from_sequence, args.from_time) {
        (Some(start_sequence), _) => consumer::DeliverPolicy::ByStartSequence { start_sequence },
        (None, Some(start_time)) => consumer::DeliverPolicy::ByStartTime { start_time },
        (None, None) => consumer::DeliverPolicy::All,
    }
}

async fn connect(nats: &NatsArgs) -> anyhow::Result<jetstream::Context> {
    let client = bus::connect(&nats.settings("infra-tickets-replay")).await?;
    Ok(bus::jetstream(client))
}

fn progress_bar(total: u64, quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {bar:40} {pos}/{len} raw events ({per_sec}, eta {eta})",
        )
        .expect("a valid template"),
    );
    bar
}

/// Re-drives raw events through the production triage handler and waits until done.
/// `clock` is what triage folds with (`Clock::system()` in the CLI; tests pass their own).
pub async fn replay(args: ReplayArgs, clock: Clock) -> anyhow::Result<ReplaySummary> {
    let js = connect(&args.nats).await?;
    let catalog = catalog_of(&args)?;
    let publisher = Publisher::new(js.clone());
    let mut raw = js.get_stream(topology::RAW_EVENTS).await?;
    let last = raw.info().await?.state.last_sequence;
    let desired_before = js.get_stream(topology::DESIRED_TICKETS).await?.info().await?.state.last_sequence;

    let name = format!("replay-{}", clock.now().format("%Y%m%dT%H%M%S%.3f")).replace('.', "-");
    let pull = raw
        .create_consumer(consumer::pull::Config {
            durable_name: Some(name.clone()),
            description: Some("A replay through triage (deleted when done).".into()),
            deliver_policy: deliver_policy(&args),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(30),
            max_deliver: 10,
            // Removed by the server if this process dies before deleting it.
            inactive_threshold: Duration::from_secs(600),
            ..Default::default()
        })
        .await?;
    let total = pull.cached_info().num_pending;
    let policy = snyk_policy(&args, catalog.clone(), &js).await?;
    let triage =
        triage::Triage::with_snyk_policy(&js, publisher.clone(), catalog, policy, args.health, clock).await?;
    let shutdown = CancellationToken::new();
    let options = bus::ConsumerOptions { concurrency: 64, ..bus::ConsumerOptions::new("replay") };
    let run = tokio::spawn(bus::consumer::run(
        pull,
        Arc::new(triage),
        publisher,
        options,
        Readiness::new(),
        shutdown.clone(),
    ));

    let bar = progress_bar(total, args.quiet);
    loop {
        let mut handle: consumer::PullConsumer =
            raw.get_consumer(&name).await.map_err(|e| anyhow::anyhow!(e))?;
        let info = handle.info().await?;
        bar.set_position(total.saturating_sub(info.num_pending + info.num_ack_pending as u64));
        if info.num_pending == 0 && info.num_ack_pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bar.finish_and_clear();
    shutdown.cancel();
    run.await??;
    raw.delete_consumer(&name).await?;
    let desired_after = js.get_stream(topology::DESIRED_TICKETS).await?.info().await?.state.last_sequence;
    tracing::info!(last_raw_sequence = last, "Replay finished.");
    Ok(ReplaySummary { events: total, desired_published: desired_after - desired_before })
}

/// Lists the tickets a replay would change, writing nothing.
/// `clock` is what the fold uses as "now", as [`replay`] does.
pub async fn diff(args: ReplayArgs, clock: &Clock) -> anyhow::Result<Vec<TicketDiff>> {
    let js = connect(&args.nats).await?;
    let current = current_desired(&js).await?;
    let folded = fold_stream(&args, clock, &js).await?;
    let mut diffs: Vec<TicketDiff> = folded
        .changed
        .into_values()
        .filter_map(|(_, ticket)| compare(current.get(&ticket.group_key.token()), &ticket))
        .collect();
    diffs.sort_by(|a, b| a.group_key.cmp(&b.group_key));
    Ok(diffs)
}

/// What a rebuild of lost group states did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildSummary {
    pub events: u64,
    /// Lost group states written again.
    pub groups_rebuilt: u64,
    /// Groups whose state was there (or that triage wrote while the rebuild ran), left alone.
    pub groups_kept: u64,
    pub desired_published: u64,
}

/// Rebuilds lost group states from the raw stream (see [`ReplayArgs::rebuild`]).
///
/// Each lost group is written as triage would write it, its final desired tickets pending, and
/// then published with the revision written as their version: a crash between the two leaves
/// them pending, and triage publishes them with the group's next event. The revisions of a
/// bucket set up again start above the lost one's (`bus::topology`), so the writer takes these
/// versions as newer than what it applied, and skips what JIRA has already by content.
pub async fn rebuild(args: ReplayArgs, clock: &Clock) -> anyhow::Result<RebuildSummary> {
    let js = connect(&args.nats).await?;
    let folded = fold_stream(&args, clock, &js).await?;
    let publisher = Publisher::new(js.clone());
    let mut tickets_of: BTreeMap<String, Vec<DesiredTicket>> = BTreeMap::new();
    for (state_key, ticket) in folded.changed.into_values() {
        tickets_of.entry(state_key).or_default().push(ticket);
    }
    let mut summary =
        RebuildSummary { events: folded.events, groups_rebuilt: 0, groups_kept: 0, desired_published: 0 };
    folded.snyk.write_lost(&mut tickets_of, &publisher, &mut summary).await?;
    folded.health.write_lost(&mut tickets_of, &publisher, &mut summary).await?;
    tracing::info!(?summary, "Group states rebuilt.");
    Ok(summary)
}

/// The raw stream (from the chosen start) folded in memory over the stored group states.
struct Folded {
    snyk: Folding<SnykPolicy>,
    health: Folding<HealthPolicy>,
    /// The last desired ticket per ticket token, with the state key of its group.
    changed: BTreeMap<String, (String, DesiredTicket)>,
    events: u64,
}

async fn fold_stream(args: &ReplayArgs, clock: &Clock, js: &jetstream::Context) -> anyhow::Result<Folded> {
    let catalog = catalog_of(args)?;
    let mut snyk = Folding::new(snyk_policy(args, catalog.clone(), js).await?, js).await?;
    let mut health = Folding::new(HealthPolicy::new(catalog, args.health.clone()), js).await?;

    let raw = js.get_stream(topology::RAW_EVENTS).await?;
    let mut info = raw.clone();
    let last = info.info().await?.state.last_sequence;
    let mut changed = BTreeMap::new();
    let mut seen = 0u64;
    if last > 0 {
        let ordered = raw
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy: deliver_policy(args),
                ..Default::default()
            })
            .await?;
        let first_pending = ordered.cached_info().num_pending;
        let bar = progress_bar(first_pending, args.quiet);
        let mut messages = ordered.messages().await?;
        while seen < first_pending {
            let Some(message) = messages.next().await else { break };
            let message = message?;
            seen += 1;
            bar.inc(1);
            let Ok(event) = RawEvent::from_json(&message.payload) else { continue };
            let now = clock.now();
            let folded = match event.kind {
                PayloadKind::SnykProjectSnapshot => snyk.fold(&event, now).await,
                PayloadKind::AwsHealthEvent => health.fold(&event, now).await,
            };
            if let Some((state_key, tickets)) = folded? {
                for ticket in tickets {
                    changed.insert(ticket.group_key.token(), (state_key.clone(), ticket));
                }
            }
        }
        bar.finish_and_clear();
    }
    Ok(Folded { snyk, health, changed, events: seen })
}

/// The latest desired ticket per group token.
async fn current_desired(js: &jetstream::Context) -> anyhow::Result<BTreeMap<String, DesiredTicket>> {
    let messages = bus::topology::stored_messages(js, topology::DESIRED_TICKETS).await?;
    Ok(messages
        .iter()
        .filter_map(|message| DesiredTicket::from_json(&message.payload).ok())
        .map(|ticket| (ticket.group_key.token(), ticket))
        .collect())
}

/// What changes between the current desired ticket and the replayed one.
fn compare(current: Option<&DesiredTicket>, replayed: &DesiredTicket) -> Option<TicketDiff> {
    let mut changes = Vec::new();
    match current {
        None if replayed.state == TicketState::Open => changes.push("created".to_owned()),
        None => return None,
        Some(current) => {
            if current.content_hash == replayed.content_hash {
                return None;
            }
            match (current.state, replayed.state) {
                (TicketState::Open, TicketState::Resolved) => changes.push("resolved".into()),
                (TicketState::Resolved, TicketState::Open) => changes.push("reopened".into()),
                _ => {}
            }
            if current.team != replayed.team {
                changes.push(format!("team {} → {}", current.team, replayed.team));
            }
            if current.lane != replayed.lane {
                changes.push(format!("lane {} → {}", current.lane, replayed.lane));
            }
            let (before, after) =
                (current.due.as_ref().map(|d| d.date), replayed.due.as_ref().map(|d| d.date));
            if before != after {
                let show = |d: Option<chrono::NaiveDate>| d.map_or("none".to_owned(), |d| d.to_string());
                changes.push(format!("due date {} → {}", show(before), show(after)));
            }
            if changes.is_empty() {
                changes.push("content".into());
            }
        }
    }
    Some(TicketDiff {
        group_key: replayed.group_key.to_string(),
        changes,
        team: replayed.team.clone(),
        lane: replayed.lane.to_string(),
    })
}

/// One policy's folding in memory, starting from the stored group states.
struct Folding<P: Policy> {
    policy: P,
    stored: JsonKv<GroupRecord<P::State>>,
    states: BTreeMap<String, GroupRecord<P::State>>,
    /// Keys that had no stored state when first folded.
    lost: std::collections::BTreeSet<String>,
}

impl<P: Policy> Folding<P> {
    async fn new(policy: P, js: &jetstream::Context) -> anyhow::Result<Self> {
        Ok(Folding {
            policy,
            stored: JsonKv::open(js, TRIAGE_GROUPS).await?,
            states: BTreeMap::new(),
            lost: Default::default(),
        })
    }

    /// Folds one event in; returns its group's state key and the tickets that changed.
    async fn fold(
        &mut self,
        event: &RawEvent,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<(String, Vec<DesiredTicket>)>> {
        let key = match self.policy.state_key(event) {
            Ok(key) => key,
            Err(PolicyError::Malformed { .. } | PolicyError::Ignored(_)) => return Ok(None),
        };
        if !self.states.contains_key(&key) {
            let stored = self.stored.get(&key).await?.map(|v| v.value);
            if stored.is_none() {
                self.lost.insert(key.clone());
            }
            self.states.insert(key.clone(), stored.unwrap_or_default());
        }
        let record = self.states.get_mut(&key).expect("inserted above");
        match triage_policy::fold(&self.policy, &mut record.stored, event, now) {
            Ok(changed) => Ok(Some((key, changed))),
            Err(PolicyError::Malformed { .. } | PolicyError::Ignored(_)) => Ok(None),
        }
    }

    /// Writes the folded state of each key that had none stored, once, with its final tickets
    /// (taken from `tickets_of`) pending; publishes them with the revision written as their
    /// version; clears them. A key that has a state by now (triage wrote it while the rebuild
    /// ran) is left alone.
    async fn write_lost(
        self,
        tickets_of: &mut BTreeMap<String, Vec<DesiredTicket>>,
        publisher: &Publisher,
        summary: &mut RebuildSummary,
    ) -> anyhow::Result<()> {
        let Folding { stored, mut states, lost, .. } = self;
        for key in lost {
            let Some(mut record) = states.remove(&key) else { continue };
            record.pending = tickets_of.remove(&key).unwrap_or_default();
            let written = match stored.create(&key, &record).await {
                Ok(written) => written,
                Err(CasError::Conflict) => {
                    summary.groups_kept += 1;
                    continue;
                }
                Err(CasError::Bus(error)) => return Err(error.into()),
            };
            triage::engine::publish_desired(publisher, &record.pending, written).await?;
            summary.desired_published += record.pending.len() as u64;
            record.pending.clear();
            // Best effort, as in triage: if triage wrote meanwhile it has published these.
            if let Err(CasError::Bus(error)) = stored.update(&key, &record, written).await {
                tracing::debug!(%error, key = %key, "Pending tickets not cleared; triage's next event will.");
            }
            summary.groups_rebuilt += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! `replay --diff` with a new policy profile, then the replay itself, against a real
    //! nats-server with the Snyk simulator, ingest-snyk and triage in-process.

    use std::ffi::OsString;

    use super::*;

    const TOKEN: &str = "replay-profile-token";

    fn flags(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    async fn drained(js: &jetstream::Context, consumer: &str) {
        let stream = js.get_stream(topology::RAW_EVENTS).await.unwrap();
        for _ in 0..400 {
            let info = stream.consumer_info(consumer).await.unwrap();
            if info.num_pending == 0 && info.num_ack_pending == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{consumer} did not drain");
    }

    fn args(url: &str, diff: bool, profile: &std::path::Path) -> ReplayArgs {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            replay: ReplayArgs,
        }
        let mut list = vec!["x", "--nats-url", url, "--quiet", "--policy-profile", profile.to_str().unwrap()];
        if diff {
            list.push("--diff");
        }
        <Wrapper as clap::Parser>::parse_from(list).replay
    }

    #[tokio::test]
    async fn a_new_profile_previewed_with_diff_lists_exactly_the_tickets_replay_then_moves() {
        let nats = local_nats::NatsServer::start().unwrap();
        let sim = snyk_sim::SnykSim::start(TOKEN).await.unwrap();
        let shutdown = CancellationToken::new();
        let config: triage::Config = service_kit::config::try_parse_from(
            flags(&["triage", "--nats-url", nats.url(), "--listen", "127.0.0.1:0"]),
            |_| None,
        )
        .unwrap();
        let _triage = triage::start(config, shutdown.clone()).await.unwrap();
        let org = format!("{}@{}", snyk_sim::SEEDED_ORG_ID, sim.base_url());
        let ingest: ingest_snyk::Config = service_kit::config::try_parse_from(
            flags(&[
                "ingest-snyk",
                "--nats-url",
                nats.url(),
                "--listen",
                "127.0.0.1:0",
                "--snyk-org",
                &org,
                "--snyk-token",
                TOKEN,
                "--snyk-reconcile-interval",
                "0s",
                "--snyk-poll-interval",
                "0s",
                "--snyk-backoff",
                "20ms",
            ]),
            |_| None,
        )
        .unwrap();
        let ingest = ingest_snyk::start(ingest, shutdown.clone()).await.unwrap();
        ingest.sync_now().await.remove(0).unwrap();
        let js = connect(&args(nats.url(), true, std::path::Path::new("unused")).nats).await.unwrap();
        drained(&js, topology::TRIAGE).await;

        let before = current_desired(&js).await.unwrap();
        let p3: Vec<String> = before
            .values()
            .filter(|t| t.state == TicketState::Open && t.lane == contracts::Lane::P3)
            .map(|t| t.group_key.to_string())
            .collect();
        assert!(!p3.is_empty() && p3.len() < before.len(), "the seeded org has P3 and other tickets");

        // The new profile gives P3 30 days instead of a quarter; nothing else changes.
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("profile.toml");
        std::fs::write(&profile, "name = \"p3-month\"\n[due]\nP3 = \"30 days\"\n").unwrap();
        let diffs = diff(args(nats.url(), true, &profile), &Clock::system()).await.unwrap();
        let listed: Vec<String> = diffs.iter().map(|d| d.group_key.clone()).collect();
        let mut want = p3.clone();
        want.sort();
        assert_eq!(listed, want, "exactly the P3 tickets: {diffs:#?}");
        assert!(
            diffs.iter().all(|d| d.changes.len() == 1 && d.changes[0].starts_with("due date ")),
            "{diffs:#?}"
        );
        assert_eq!(current_desired(&js).await.unwrap(), before, "--diff wrote nothing");

        replay(args(nats.url(), false, &profile), Clock::system()).await.unwrap();
        let after = current_desired(&js).await.unwrap();
        for (token, ticket) in &after {
            let old = &before[token];
            if p3.contains(&ticket.group_key.to_string()) {
                let since = match old.due.as_ref().unwrap().source {
                    contracts::DueDateSource::LaneSla { since, .. } => since,
                    ref other => panic!("{other:?}"),
                };
                assert_eq!(ticket.due.as_ref().unwrap().date, since + chrono::Days::new(30));
            } else {
                assert_eq!(ticket.content_hash, old.content_hash, "{} moved", ticket.group_key);
            }
        }
        assert!(diff(args(nats.url(), true, &profile), &Clock::system()).await.unwrap().is_empty());
        shutdown.cancel();
    }
}
