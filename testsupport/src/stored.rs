//! What the collector's table must hold for an expected row: each column's
//! text as the stores' clients read it back, and the two sums that close
//! the books (rows stored, records reported dropped).

use kong_looker_proto::OwnedRow;

/// Rows a filter or plugin server sent (not http-log's).
pub const FILTER_ROWS: &str = "SELECT count(*) FROM kong_looker_requests WHERE origin = 'filter'";
/// Records the producers reported dropped, every reason but abandoned
/// batches (which the store counts as batches, not records).
pub const REPORTED_DROPS: &str = "SELECT coalesce(sum(drops_buffer_full + drops_dispatch_failed \
     + drops_capture_error + drops_instance_reset), 0) FROM kong_looker_batches";

/// The columns the pipeline tests check on every stored row: what every
/// host fills from what a request carried.
pub const PIPELINE_COLUMNS: [&str; 8] = [
    "route_name",
    "status",
    "latency_total_us",
    "consumer_username",
    "client_id",
    "auth_method",
    "workspace",
    "agent_name",
];

/// `SELECT request_id, <columns> ...` over the rows a producer sent.
pub fn select_by_request_id(columns: &[&str]) -> String {
    format!(
        "SELECT request_id, {} FROM kong_looker_requests WHERE origin = 'filter'",
        columns.join(", ")
    )
}

/// `row`'s values for `columns`, as a store reads them back.
pub fn expected(row: &OwnedRow, columns: &[&str]) -> Vec<Option<String>> {
    columns.iter().map(|c| column(row, c)).collect()
}

/// `row`'s value in `column` as text; a column this does not know is a
/// mistake in the test.
pub fn column(row: &OwnedRow, column: &str) -> Option<String> {
    let text = |v: &Option<String>| v.clone();
    let word = |v: Option<&str>| v.map(str::to_owned);
    let number = |v: u64| Some(v.to_string());
    match column {
        "route_id" => text(&row.route_id),
        "route_name" => text(&row.route_name),
        "service_id" => text(&row.service_id),
        "service_name" => text(&row.service_name),
        "workspace" => text(&row.workspace),
        "method" => text(&row.method),
        "host" => text(&row.host),
        "path" => text(&row.path),
        "status" => row.status.map(|s| s.to_string()),
        "response_source" => word(row.response_source),
        "latency_total_us" => number(row.latency_total_us),
        "latency_upstream_us" => row.latency_upstream_us.and_then(number),
        "request_bytes" => number(row.request_bytes),
        "response_bytes" => number(row.response_bytes),
        "auth_method" => word(row.auth_method),
        "trust" => word(row.trust),
        "anonymous" => Some(u8::from(row.anonymous).to_string()),
        "consumer_id" => text(&row.consumer_id),
        "consumer_username" => text(&row.consumer_username),
        "consumer_custom_id" => text(&row.consumer_custom_id),
        "credential" => text(&row.credential),
        "consumer_groups" => {
            (!row.consumer_groups.is_empty()).then(|| row.consumer_groups.join(","))
        }
        "subject" => text(&row.subject),
        "issuer" => text(&row.issuer),
        "client_id" => text(&row.client_id),
        "client_address" => text(&row.client_address),
        "agent_category" => word(row.agent_category),
        "agent_name" => text(&row.agent_name),
        "request_id" => text(&row.request_id),
        "trace_id" => text(&row.trace_id),
        other => panic!("no expected value for column {other}"),
    }
}
