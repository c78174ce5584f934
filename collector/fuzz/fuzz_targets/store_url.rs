//! `--store` URLs: any text is a store or a named refusal, and a parsed
//! URL shown back never holds its password.
#![no_main]

use kong_looker_collector::store::StoreUrl;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match text.parse::<StoreUrl>() {
        Ok(StoreUrl::ClickHouse(url)) => {
            let shown = url.to_string();
            assert!(shown.starts_with("clickhouse://"), "{shown}");
            // The user part is the user, encoded, and the password is
            // replaced, whatever it is.
            let userinfo = shown
                .strip_prefix("clickhouse://")
                .and_then(|r| r.split_once('@'))
                .map(|(u, _)| percent_encoding::percent_decode_str(u).decode_utf8_lossy());
            let hidden = if url.password.is_empty() { "" } else { ":***" };
            assert_eq!(
                userinfo.as_deref(),
                Some(format!("{}{hidden}", url.user).as_str()),
                "{shown}"
            );
            // What is shown parses again to the same server.
            let again = kong_looker_collector::store::ChUrl::parse(&shown.replace(":***@", "@"));
            assert!(again.is_ok_and(|a| a.endpoint == url.endpoint && a.database == url.database));
        }
        Ok(other) => {
            let _ = other.to_string();
        }
        Err(e) => assert!(!e.is_empty()),
    }
});
