//! The optional Looker datagroup trigger: after commits, tell Looker that
//! the data changed, so dashboards refresh at once instead of at the
//! datagroup's next `sql_trigger` check. It logs in with an API key
//! (`POST /api/4.0/login`) and sets the datagroup's `triggered_at`
//! (`PATCH /api/4.0/datagroups/{id}`), at most once per debounce interval,
//! with one trailing trigger after the last commit. It runs on a thread of
//! its own, so a slow or failing Looker never holds up a commit.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::time::{Duration, Instant};

use crate::metrics::Metrics;

/// Where and how to trigger.
#[derive(Clone)]
pub struct LookerSettings {
    /// The instance's API base, e.g. `https://example.cloud.looker.com`.
    pub base_url: String,
    /// API key id.
    pub client_id: String,
    /// API key secret.
    pub client_secret: String,
    /// The datagroup's id, as `GET /api/4.0/datagroups` lists it.
    pub datagroup_id: String,
    /// Least time between two triggers.
    pub debounce: Duration,
}

impl std::fmt::Debug for LookerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LookerSettings")
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field("datagroup_id", &self.datagroup_id)
            .field("debounce", &self.debounce)
            .finish_non_exhaustive()
    }
}

/// The committer's handle: a non-blocking "something landed".
#[derive(Clone, Debug)]
pub struct Trigger {
    signal: SyncSender<()>,
}

impl Trigger {
    /// Starts the trigger thread. It ends once every handle is dropped,
    /// after a last trigger if one is due.
    pub fn start(settings: LookerSettings, metrics: Arc<Metrics>) -> std::io::Result<Trigger> {
        // One slot: commits while a trigger is pending coalesce into it.
        let (signal, rx) = sync_channel(1);
        std::thread::Builder::new()
            .name("looker-trigger".into())
            .spawn(move || run(settings, metrics, rx))?;
        Ok(Trigger { signal })
    }

    /// Rows were committed.
    pub fn committed(&self) {
        let _ = self.signal.try_send(());
    }
}

fn run(settings: LookerSettings, metrics: Arc<Metrics>, rx: Receiver<()>) {
    let mut client = Client::new(settings.clone());
    let mut last: Option<Instant> = None;
    while rx.recv().is_ok() {
        if let Some(at) = last {
            let due = at + settings.debounce;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        // Commits during the wait are covered by this trigger.
        match rx.try_recv() {
            Ok(()) | Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => {}
        }
        last = Some(Instant::now());
        match client.trigger() {
            Ok(()) => metrics.looker_trigger("ok"),
            Err(e) => {
                tracing::warn!(error = %e, datagroup = %settings.datagroup_id, "Looker datagroup trigger failed");
                metrics.looker_trigger("failed");
            }
        }
    }
}

struct Client {
    settings: LookerSettings,
    agent: ureq::Agent,
    token: Option<(String, Instant)>,
}

#[derive(serde::Deserialize)]
struct AccessToken {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl Client {
    fn new(settings: LookerSettings) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();
        Client {
            settings,
            agent,
            token: None,
        }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/api/4.0{path}",
            self.settings.base_url.trim_end_matches('/')
        )
    }

    /// A token, logging in when there is none or it is about to expire.
    fn token(&mut self) -> Result<String, String> {
        if let Some((token, until)) = &self.token
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let mut reply = self
            .agent
            .post(&self.url("/login"))
            .send_form([
                ("client_id", self.settings.client_id.as_str()),
                ("client_secret", self.settings.client_secret.as_str()),
            ])
            .map_err(|e| format!("login: {e}"))?;
        if !reply.status().is_success() {
            return Err(format!("login: HTTP {}", reply.status()));
        }
        let t: AccessToken = reply
            .body_mut()
            .read_json()
            .map_err(|e| format!("login reply: {e}"))?;
        // Renew a minute early, so a token never expires mid-request.
        let life = Duration::from_secs(t.expires_in.unwrap_or(3600).saturating_sub(60));
        self.token = Some((t.access_token.clone(), Instant::now() + life));
        Ok(t.access_token)
    }

    fn trigger(&mut self) -> Result<(), String> {
        for attempt in 0..2 {
            let token = self.token()?;
            // Looker refuses a triggered_at in the future; now is enough.
            let now_s = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let path = format!(
                "/datagroups/{}",
                encode_segment(&self.settings.datagroup_id)
            );
            let reply = self
                .agent
                .patch(&self.url(&path))
                .header("authorization", &format!("token {token}"))
                .send_json(serde_json::json!({ "triggered_at": now_s }))
                .map_err(|e| format!("datagroup update: {e}"))?;
            match reply.status().as_u16() {
                200..=299 => return Ok(()),
                // An expired or revoked token: log in again, once.
                401 if attempt == 0 => self.token = None,
                status => return Err(format!("datagroup update: HTTP {status}")),
            }
        }
        Err("datagroup update: unauthorized after a fresh login".into())
    }
}

/// Percent-encodes a path segment (datagroup ids are usually digits).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_encoded_as_one_segment() {
        assert_eq!(super::encode_segment("42"), "42");
        assert_eq!(
            super::encode_segment("kong_looker::fresh/x"),
            "kong_looker%3A%3Afresh%2Fx"
        );
    }
}
