//! The commit path. Handlers hand decoded work to a bounded queue
//! ([`Pipeline::submit`]); one [`Committer`] task drains it, resolves each
//! batch against its producer's session dictionary, and commits whatever
//! is waiting in one store transaction (group commit), then answers every
//! waiting handler. One committer means a producer's batches are applied
//! in order and the dictionaries need no locks; the store's unique keys
//! make the result exactly-once even if several collectors share a store.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kong_looker_proto::v1;
use kong_looker_proto::{DecodeError, DecodedBatch, Dictionary, Limits};
use prost::Message;
use tokio::sync::{mpsc, oneshot};

use crate::http_log::LogRow;
use crate::metrics::Metrics;
use crate::store::{BatchCommit, Commit, Store, StoreError};

/// Work for the committer.
#[derive(Debug)]
pub enum Work {
    /// A decoded filter batch.
    Batch(Box<DecodedBatch>),
    /// Mapped http-log entries.
    Log(Vec<LogRow>),
}

impl Work {
    /// The rows it adds.
    fn rows(&self) -> usize {
        match self {
            Work::Batch(b) => b.len(),
            Work::Log(rows) => rows.len(),
        }
    }
}

/// What became of a job.
#[derive(Debug)]
pub enum Verdict {
    /// Committed now.
    Stored,
    /// Already committed before: acknowledged, not stored again.
    Duplicate,
    /// The batch does not fit its producer's dictionary.
    Refused(DecodeError),
    /// Http-log rows: how many landed; the rest were already stored.
    Logged {
        /// Rows stored now.
        landed: u64,
    },
    /// The store failed; nothing was stored.
    Unavailable(String),
}

/// The queue is full: answer 429.
#[derive(Debug)]
pub struct QueueFull;

struct Job {
    work: Work,
    received_at_ms: i64,
    reply: oneshot::Sender<Verdict>,
}

/// The handlers' side of the queue.
#[derive(Clone, Debug)]
pub struct Pipeline {
    tx: mpsc::Sender<Job>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").finish_non_exhaustive()
    }
}

impl Pipeline {
    /// Queues work; the receiver yields the verdict after the commit.
    pub fn submit(&self, work: Work) -> Result<oneshot::Receiver<Verdict>, QueueFull> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            work,
            received_at_ms: crate::store::now_ms(),
            reply,
        };
        self.tx.try_send(job).map_err(|_| QueueFull)?;
        self.metrics.queue_depth.inc();
        Ok(rx)
    }
}

/// Committer settings.
#[derive(Clone, Debug)]
pub struct CommitterConfig {
    /// Jobs the queue holds before handlers answer 429.
    pub queue_jobs: usize,
    /// Most jobs in one transaction.
    pub max_group: usize,
    /// Rows (records and http-log entries) past which a group commits
    /// without waiting.
    pub max_rows: usize,
    /// How long after the previous commit began a group may wait for more
    /// work; zero commits whatever is waiting at once.
    pub linger: Duration,
    /// Producer dictionaries kept in memory; the least recently used is
    /// reloaded from the store when needed again.
    pub max_dictionaries: usize,
    /// Reader limits for dictionary growth.
    pub limits: Limits,
    /// Told after each commit that stored rows.
    pub trigger: Option<crate::looker::Trigger>,
}

impl Default for CommitterConfig {
    fn default() -> Self {
        CommitterConfig {
            queue_jobs: 256,
            max_group: 64,
            max_rows: usize::MAX,
            linger: Duration::ZERO,
            max_dictionaries: 4096,
            limits: Limits::default(),
            trigger: None,
        }
    }
}

type ProducerKey = ([u8; 16], u32);

/// Per producer: the dictionary, and the sequence numbers seen.
struct Producer {
    dictionary: Dictionary,
    last_used: u64,
}

/// Per instance, since start: the highest sequence number known, how many
/// numbers are accounted for (batches stored, and abandoned batches their
/// producer reported), and which of those are notices, so that a batch
/// arriving after its notice is not counted twice.
#[derive(Default)]
struct SequenceBook {
    by_instance: HashMap<[u8; 16], Accounted>,
    missing: i64,
}

#[derive(Default)]
struct Accounted {
    max: u64,
    count: u64,
    notices: std::collections::HashSet<u64>,
}

impl Accounted {
    fn missing(&self) -> i64 {
        i64::try_from(self.max.saturating_sub(self.count)).unwrap_or(i64::MAX)
    }
}

/// Producers the book follows; past it, it starts over (the gauge then
/// counts from that moment; the batches table keeps the full record).
const MAX_BOOK_PRODUCERS: usize = 100_000;

impl SequenceBook {
    /// Notes a stored batch and the abandoned sequence numbers whose
    /// notices it stored.
    fn stored(&mut self, instance: [u8; 16], sequence: u64, notices: &[u64]) {
        if self.by_instance.len() >= MAX_BOOK_PRODUCERS && !self.by_instance.contains_key(&instance)
        {
            self.by_instance.clear();
            self.missing = 0;
        }
        let p = self.by_instance.entry(instance).or_default();
        let before = p.missing();
        for &n in notices {
            if p.notices.insert(n) {
                p.max = p.max.max(n);
                p.count = p.count.saturating_add(1);
            }
        }
        // A batch its producer had given up on takes its notice's place.
        if !p.notices.remove(&sequence) {
            p.count = p.count.saturating_add(1);
        }
        p.max = p.max.max(sequence);
        self.missing = self
            .missing
            .saturating_add(p.missing())
            .saturating_sub(before);
    }
}

/// The single consumer of the queue.
pub struct Committer {
    rx: mpsc::Receiver<Job>,
    store: Store,
    config: CommitterConfig,
    metrics: Arc<Metrics>,
    producers: HashMap<ProducerKey, Producer>,
    clock: u64,
    sequences: SequenceBook,
}

/// The queue and its committer.
pub fn channel(
    store: Store,
    config: CommitterConfig,
    metrics: Arc<Metrics>,
) -> (Pipeline, Committer) {
    let (tx, rx) = mpsc::channel(config.queue_jobs.max(1));
    (
        Pipeline {
            tx,
            metrics: metrics.clone(),
        },
        Committer {
            rx,
            store,
            config,
            metrics,
            producers: HashMap::new(),
            clock: 0,
            sequences: SequenceBook::default(),
        },
    )
}

impl Committer {
    /// Commits until every [`Pipeline`] handle is dropped and the queue is
    /// empty, so a shutdown finishes the work already accepted.
    pub async fn run(mut self) {
        let mut group = Vec::new();
        let mut last_commit: Option<Instant> = None;
        while let Some(first) = self.rx.recv().await {
            let mut rows = first.work.rows();
            group.push(first);
            // Wait for more only until the linger since the last commit
            // has passed: sparse traffic commits at once, steady traffic
            // about once per linger.
            let deadline = last_commit
                .map(|t| t + self.config.linger)
                .filter(|d| *d > Instant::now());
            while group.len() < self.config.max_group && rows < self.config.max_rows {
                let job = match self.rx.try_recv() {
                    Ok(job) => job,
                    Err(_) => match deadline {
                        None => break,
                        Some(d) => match tokio::time::timeout_at(d.into(), self.rx.recv()).await {
                            Ok(Some(job)) => job,
                            Ok(None) | Err(_) => break,
                        },
                    },
                };
                rows = rows.saturating_add(job.work.rows());
                group.push(job);
            }
            self.metrics.queue_depth.dec_by(group.len() as i64);
            last_commit = Some(Instant::now());
            self.commit_group(std::mem::take(&mut group)).await;
        }
    }

    async fn commit_group(&mut self, jobs: Vec<Job>) {
        self.clock = self.clock.wrapping_add(1);
        let mut verdicts: Vec<Option<Verdict>> = jobs.iter().map(|_| None).collect();
        // Where each touched dictionary stood before this group, to undo
        // the group's additions if the transaction fails.
        let mut marks = HashMap::new();
        let mut definitions: Vec<Option<Vec<u8>>> = jobs.iter().map(|_| None).collect();
        for (i, job) in jobs.iter().enumerate() {
            let Work::Batch(batch) = &job.work else {
                continue;
            };
            match self.apply(batch, &mut marks).await {
                Ok(defs) => definitions[i] = defs,
                Err(v) => verdicts[i] = Some(v),
            }
        }
        let mut commit = Commit::default();
        let mut slots = Vec::new();
        for (i, job) in jobs.iter().enumerate() {
            if verdicts[i].is_some() {
                continue;
            }
            match &job.work {
                Work::Batch(batch) => {
                    let Some(p) = self.producers.get(&(batch.instance_id, batch.generation)) else {
                        verdicts[i] = Some(Verdict::Unavailable("dictionary evicted".into()));
                        continue;
                    };
                    slots.push(i);
                    commit.batches.push(BatchCommit {
                        batch,
                        dictionary: &p.dictionary,
                        instance_id: batch.instance_id_string(),
                        definitions: definitions[i].take(),
                        received_at_ms: job.received_at_ms,
                    });
                }
                Work::Log(rows) => commit.log_rows.extend(rows.iter()),
            }
        }
        let has_work = !commit.batches.is_empty() || !commit.log_rows.is_empty();
        let started = Instant::now();
        let result = if has_work {
            self.store.commit(&commit).await
        } else {
            Ok(Default::default())
        };
        if has_work {
            self.metrics
                .commit_seconds
                .observe(started.elapsed().as_secs_f64());
        }
        drop(commit);
        match result {
            Ok(report) => {
                self.metrics.store_up.set(1);
                let stored = report.inserted.contains(&true) || report.log_rows_landed > 0;
                if let Some(t) = self.config.trigger.as_ref().filter(|_| stored) {
                    t.committed();
                }
                let no_notices = Vec::new();
                for (n, (&i, &stored)) in slots.iter().zip(&report.inserted).enumerate() {
                    if let Work::Batch(b) = &jobs[i].work {
                        verdicts[i] = Some(if stored {
                            self.count_stored(b, report.abandoned.get(n).unwrap_or(&no_notices));
                            Verdict::Stored
                        } else {
                            self.metrics.batches_duplicate.inc();
                            Verdict::Duplicate
                        });
                    }
                }
                // Http-log rows share one insert; the landed count is the
                // group's, split over the bodies in order.
                let mut landed = report.log_rows_landed;
                for (i, job) in jobs.iter().enumerate() {
                    if let Work::Log(rows) = &job.work {
                        let n = landed.min(rows.len() as u64);
                        landed -= n;
                        self.metrics.http_log_landed.inc_by(n);
                        self.metrics
                            .http_log_duplicate
                            .inc_by(rows.len() as u64 - n);
                        verdicts[i] = Some(Verdict::Logged { landed: n });
                    }
                }
            }
            Err(StoreError(e)) => {
                self.metrics.store_up.set(0);
                tracing::warn!(error = %e, jobs = jobs.len(), "commit failed; answering 503");
                for (key, mark) in marks {
                    if let Some(p) = self.producers.get_mut(&key) {
                        p.dictionary.rollback(mark);
                    }
                }
                for v in verdicts.iter_mut().filter(|v| v.is_none()) {
                    *v = Some(Verdict::Unavailable(e.clone()));
                }
            }
        }
        for (job, verdict) in jobs.into_iter().zip(verdicts) {
            // A handler that gave up (client gone) no longer listens.
            let _ = job
                .reply
                .send(verdict.unwrap_or(Verdict::Unavailable("no verdict".into())));
        }
        self.evict();
    }

    fn count_stored(&mut self, b: &DecodedBatch, notices: &[u64]) {
        self.metrics.batches_committed.inc();
        self.metrics.records_committed.inc_by(b.len() as u64);
        let d = &b.drops;
        self.metrics.drops("buffer_full", d.buffer_full);
        self.metrics.drops("dispatch_failed", d.dispatch_failed);
        self.metrics.drops("capture_error", d.capture_error);
        self.metrics.drops("instance_reset", d.instance_reset);
        self.sequences.stored(b.instance_id, b.sequence, notices);
        self.metrics.missing_batches.set(self.sequences.missing);
    }

    /// Applies a batch's definitions to its producer's dictionary and
    /// checks its references; returns what it added, encoded.
    async fn apply(
        &mut self,
        batch: &DecodedBatch,
        marks: &mut HashMap<ProducerKey, kong_looker_proto::reader::DictionaryMark>,
    ) -> Result<Option<Vec<u8>>, Verdict> {
        let key = (batch.instance_id, batch.generation);
        let mut reloaded = false;
        loop {
            if !self.producers.contains_key(&key) {
                let dictionary = self.load(batch).await?;
                reloaded = true;
                self.producers.insert(
                    key,
                    Producer {
                        dictionary,
                        last_used: self.clock,
                    },
                );
            }
            let Some(p) = self.producers.get_mut(&key) else {
                return Err(Verdict::Unavailable("dictionary missing".into()));
            };
            p.last_used = self.clock;
            let mark = p.dictionary.mark();
            marks.entry(key).or_insert(mark);
            let applied = p
                .dictionary
                .apply(batch, &self.config.limits)
                .and_then(|()| batch.check_references(&p.dictionary));
            match applied {
                Ok(()) => {
                    let added = p.dictionary.definitions_since(mark);
                    return Ok((!is_empty(&added)).then(|| added.encode_to_vec()));
                }
                Err(e) => {
                    p.dictionary.rollback(mark);
                    // Another collector on the same store may have committed
                    // this producer's last batches: read them once before
                    // asking the producer to define everything again.
                    let first_touch = marks.get(&key) == Some(&mark);
                    if matches!(e, DecodeError::UnknownDefinitions { .. })
                        && !reloaded
                        && first_touch
                    {
                        marks.remove(&key);
                        self.producers.remove(&key);
                        continue;
                    }
                    self.metrics.reject(e.code());
                    tracing::info!(instance = %batch.instance_id_string(), sequence = batch.sequence,
                        error = %e, "batch refused");
                    return Err(Verdict::Refused(e));
                }
            }
        }
    }

    /// The producer's dictionary as the store has it.
    async fn load(&mut self, batch: &DecodedBatch) -> Result<Dictionary, Verdict> {
        let instance = batch.instance_id_string();
        let blobs = self
            .store
            .definitions(&instance, batch.generation)
            .await
            .map_err(|e| Verdict::Unavailable(e.0))?;
        let mut dictionary = Dictionary::new(batch.generation);
        for blob in blobs {
            let applied = v1::Dictionary::decode(blob.as_slice())
                .map_err(DecodeError::from)
                .and_then(|d| dictionary.apply_definitions(&d, &self.config.limits));
            if let Err(e) = applied {
                // The producer will be asked to define everything again.
                tracing::warn!(%instance, error = %e, "stored dictionary unusable; starting afresh");
                return Ok(Dictionary::new(batch.generation));
            }
        }
        Ok(dictionary)
    }

    fn evict(&mut self) {
        while self.producers.len() > self.config.max_dictionaries {
            let oldest = self
                .producers
                .iter()
                .min_by_key(|(_, p)| p.last_used)
                .map(|(k, _)| *k);
            match oldest {
                Some(k) => self.producers.remove(&k),
                None => break,
            };
        }
    }
}

fn is_empty(d: &v1::Dictionary) -> bool {
    d.strings.is_empty()
        && d.endpoints.is_empty()
        && d.identities.is_empty()
        && d.agents.is_empty()
        && d.outcomes.is_empty()
}

#[cfg(test)]
mod tests {
    use super::SequenceBook;

    /// The gauge counts numbers below a producer's highest that neither a
    /// stored batch nor a stored notice covers, and a batch that lands
    /// after its notice is not counted twice.
    #[test]
    fn notices_cover_gaps_once() {
        let mut book = SequenceBook::default();
        let (a, b) = ([1; 16], [2; 16]);
        book.stored(a, 1, &[]);
        book.stored(a, 5, &[2]);
        assert_eq!(book.missing, 2, "3 and 4");
        book.stored(b, 3, &[]);
        assert_eq!(book.missing, 4, "and b's 1 and 2");
        // Batch 2 arrives after all: it takes its notice's place.
        book.stored(a, 2, &[]);
        assert_eq!(book.missing, 4);
        book.stored(a, 6, &[3, 4]);
        assert_eq!(book.missing, 2);
        book.stored(a, 4, &[]);
        book.stored(b, 4, &[1, 2]);
        assert_eq!(book.missing, 0);
        let a = &book.by_instance[&a];
        assert_eq!((a.max, a.count), (6, 6));
    }
}
