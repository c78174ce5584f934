//! The real `dist/kong_looker.wasm` in the test host, as Kong 3.8 and 3.9
//! run it: every captured field against what the request carried, over the
//! reference mix and over hand-written cases for each identity source.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use kong_looker_proto::mix::{Mix, MixParams};
use kong_looker_testkit::{Kong, Profile, Request, Sink};
use support::traffic::{self, TEAMS};
use support::{Collected, OwnedRow, config, filter};

const START_MS: i64 = 1_767_614_400_000;

/// Runs `requests` through a host with `chains`, flushes, and returns what
/// reached the sink as rows, plus the host for further checks.
fn run(profile: Profile, chains: &[String], requests: &[Request]) -> (Collected, Kong) {
    let sink = Sink::start().unwrap();
    let chains: Vec<String> = chains
        .iter()
        .map(|c| c.replace("{collector}", &sink.address()))
        .collect();
    let f = filter();
    let mut builder = Kong::builder(&f, profile)
        .workers(2)
        .start_at_ms(START_MS as u64);
    for c in &chains {
        builder = builder.chain(c);
    }
    let mut kong = builder.build();
    for (i, r) in requests.iter().enumerate() {
        let outcome = kong.request(i, r);
        assert_eq!(outcome.trap, None, "request {i} trapped");
        assert_eq!(
            outcome.status, r.response.status,
            "the filter changed a status"
        );
    }
    kong.advance(Duration::from_secs(2));
    let collected = Collected::from(&sink.received());
    assert!(kong.traps().is_empty(), "traps: {:?}", kong.traps());
    (collected, kong)
}

fn one(profile: Profile, extra: &str, request: Request) -> OwnedRow {
    let (c, _) = run(profile, &[config("{collector}", extra)], &[request]);
    assert_eq!(c.rows.len(), 1, "one request, one row");
    c.rows.into_iter().next().unwrap()
}

#[test]
fn reference_mix_is_captured_field_for_field_on_kong_3_9() {
    reference_mix(Profile::Kong39);
}

#[test]
fn reference_mix_is_captured_field_for_field_on_kong_3_8() {
    reference_mix(Profile::Kong38);
}

fn reference_mix(profile: Profile) {
    let mut mix = Mix::new(MixParams {
        request_ids: true,
        ..MixParams::default()
    });
    let requests = mix.take_requests(3000);
    let mut sent = Vec::new();
    let mut expected = HashMap::new();
    for req in &requests {
        let (r, row) = traffic::kong_request(&mix, req, profile);
        expected.insert(req.request_id.clone().unwrap(), row);
        sent.push(r);
    }
    let chains = traffic::chains("{collector}", "");
    let (collected, _) = run(profile, &chains, &sent);
    assert_eq!(
        collected.rows.len(),
        requests.len(),
        "every request is a row"
    );
    for row in &collected.rows {
        let id = row.request_id.clone().expect("request id sent");
        let want = expected.remove(&id).expect("each request once");
        // The host's clock starts at START_MS and only moves forward.
        assert!(row.started_at_ms >= START_MS, "{row:?}");
        let got = OwnedRow {
            started_at_ms: 0,
            ..row.clone()
        };
        assert_eq!(got, want, "request {id}");
    }
    assert!(expected.is_empty());
    // Every team's chain labelled its records.
    for team in TEAMS {
        assert!(
            collected
                .rows
                .iter()
                .any(|r| r.workspace.as_deref() == Some(team))
        );
    }
}
