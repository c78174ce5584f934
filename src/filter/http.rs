//! The HTTP context of one request: in the log phase it reads the request
//! header map and Kong's properties, and leaves the answers to the worker's
//! stage, which assembles the record and appends it to the outbox. It
//! never changes the request and never pauses it.
//!
//! Nothing happens in the headers phase. Kong's auth plugins have set the
//! consumer headers by then, and they are the same at the end of the
//! request, so one read in the log phase serves every request: those that
//! nginx answered before the headers phase too. The start time is the log
//! time less nginx's request time, which is also when Kong counts from.

use std::borrow::Cow;
use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{LogLevel, MapType};

use kong_looker_proto::builder::Producer;

use super::root::Chain;
use super::{abi, log, now_ms, stage, worker};
use kong_looker_core::capture::capturer::{FiguresOnly, LineUse, LogSource};
use kong_looker_core::capture::log_line;

/// One request's context.
pub struct Http {
    chain: Option<Rc<Chain>>,
}

impl Http {
    /// A context for a request on `chain`; `None` for an inert chain.
    pub fn new(chain: Option<Rc<Chain>>) -> Self {
        Http { chain }
    }
}

/// Kong's properties and response headers, read on demand.
struct Host;

impl LogSource for Host {
    fn property(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        abi::property(name).map(Cow::Owned)
    }

    fn response_header(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, name)
            .ok()
            .flatten()
            .map(Cow::Owned)
    }

    fn request_header(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name)
            .ok()
            .flatten()
            .map(Cow::Owned)
    }
}

impl Context for Http {}

impl HttpContext for Http {
    fn on_log(&mut self) {
        let Some(chain) = &self.chain else {
            return;
        };
        let Ok(mut capturer) = chain.capturer.try_borrow_mut() else {
            worker::count_capture_error(chain.lane);
            return;
        };
        let known = worker::with(|w| {
            if !w.producer_known {
                w.producer_known = true;
                let text = |name: &str| {
                    Host.property(name)
                        .and_then(|v| String::from_utf8(v.into_owned()).ok())
                        .unwrap_or_default()
                };
                w.producer.node_id = text("kong.node.id");
                w.producer.kong_version = text("kong.version");
                let shared = w.producer.clone();
                for lane in &mut w.lanes {
                    lane.outbox.set_producer(&Producer {
                        instance_id: lane.instance_id,
                        ..shared.clone()
                    });
                }
            }
        });
        if known.is_none() {
            worker::count_capture_error(chain.lane);
            return;
        }
        // Every host read happens here, in the log phase, into the stage's
        // next slot; the record is assembled later with others.
        let untried = *capturer.line_use() == LineUse::Untried;
        // The header map only where `$kong_looker_log` does not bring the
        // request's fields, and the clock only where it does not bring
        // nginx's; the start is the log time less nginx's request time.
        let full = stage::read(chain, |reads| {
            capturer.read_request_into(reads, &Host, abi::request_header_map, now_ms)
        });
        if untried {
            say_line_use(capturer.line_use());
        }
        drop(capturer);
        match full {
            Some(true) => stage::assemble(),
            Some(false) => {}
            // Only a re-entered host callback holds the stage: the record
            // is lost, and counted.
            None => worker::count_capture_error(chain.lane),
        }
    }
}

/// Says once per chain whether nginx's figures and the request's fields
/// come in one read: an operator who left out `kong_looker.nginx.conf`
/// pays eight reads more per request, and one whose include is of another
/// version should know why.
fn say_line_use(used: &LineUse) {
    match used {
        LineUse::Untried | LineUse::Read => {}
        // An include of an earlier release is worth a warning (Kong logs
        // at notice); a config's own header names are the operator's
        // choice, said at info.
        LineUse::FiguresOnly(why) => log(
            match why {
                FiguresOnly::OlderFormat => LogLevel::Warn,
                FiguresOnly::ConfiguredHeaders => LogLevel::Info,
            },
            &format!(
                "${} brings nginx's figures but not the request's fields ({why}), \
                 so the request header map is read too (one host call more a request)",
                log_line::VARIABLE
            ),
        ),
        LineUse::Absent => log(
            LogLevel::Warn,
            &format!(
                "${} is not defined, so nginx's figures are read one by one \
                 (eight host calls a request where one would do): include \
                 kong_looker.nginx.conf with nginx_http_include",
                log_line::VARIABLE
            ),
        ),
        LineUse::Refused(why) => log(
            LogLevel::Warn,
            &format!(
                "${} is not in this build's format ({why}), so nginx's figures \
                 are read one by one: include the kong_looker.nginx.conf of this release",
                log_line::VARIABLE
            ),
        ),
    }
}
