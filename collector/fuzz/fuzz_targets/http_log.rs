//! Kong http-log JSON mapping: any body is mapped or refused by name, and
//! every mapped row stays inside the table's bounds.
#![no_main]

use kong_looker_collector::http_log::Mapper;
use kong_looker_core::capture::privacy::AddressMode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mapper = Mapper::new(AddressMode::Truncate, None);
    match mapper.map(data) {
        Ok(rows) => {
            for row in &rows {
                let v = row.view();
                assert!(v.row.started_at_ms >= 0);
                assert!(v.row.status.is_none_or(|s| (100..=999).contains(&s)));
                assert!(v.row.path.is_none_or(|p| p.starts_with('/')));
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
