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
            // The password is replaced, whatever it is (a password that
            // is also part of the host or a setting can still appear).
            if url.password.len() > 3 && !url.endpoint.contains(&url.password)
                && !url.database.contains(&url.password)
                && !url.user.contains(&url.password)
                && !url.settings.iter().any(|(k, v)| k.contains(&url.password) || v.contains(&url.password))
                && !url.ca_file.as_deref().unwrap_or("").contains(&url.password)
            {
                assert!(!shown.contains(&url.password), "{shown}");
            }
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
