//! The probe filter. Its configuration is a comma-separated list of words;
//! each turns on one behaviour, so a test can provoke exactly what it checks
//! (including traps: panics here become traps, on purpose).

use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType, MetricType};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|id| -> Box<dyn RootContext> {
        Box::new(Root { id, words: Vec::new(), counter: None })
    });
}}

struct Root {
    id: u32,
    words: Vec<String>,
    counter: Option<u32>,
}

impl Root {
    fn has(&self, word: &str) -> bool {
        self.words.iter().any(|w| w == word)
    }

    /// The value of `key:value`.
    fn value(&self, key: &str) -> Option<String> {
        self.words
            .iter()
            .find_map(|w| w.strip_prefix(&format!("{key}:")).map(str::to_owned))
    }
}

impl Root {
    /// One `dispatch_http_call` to the `dispatch_on_tick` upstream.
    fn dispatch(&self, upstream: &str) {
        let timeout = self
            .value("timeout")
            .and_then(|t| t.parse().ok())
            .unwrap_or(1000);
        let result = self.dispatch_http_call(
            upstream,
            vec![
                (":method", "POST"),
                (":path", "/v1/probe"),
                (":authority", "collector"),
                ("x-probe", "1"),
            ],
            Some(b"hello"),
            vec![],
            Duration::from_millis(timeout),
        );
        proxy_wasm::hostcalls::log(LogLevel::Info, &format!("dispatched {result:?}")).ok();
    }

    /// Reads a property with the raw host call (the trait's helper panics
    /// on an error status) and logs what came back.
    fn log_property(&self, at: &str, name: &str) {
        let path: Vec<&str> = name.split('.').collect();
        let value = proxy_wasm::hostcalls::get_property(path)
            .map(|v| v.map(|b| String::from_utf8_lossy(&b).into_owned()));
        proxy_wasm::hostcalls::log(LogLevel::Info, &format!("{at} {name}={value:?}")).ok();
    }
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, _trailers: usize) {
        let pairs =
            proxy_wasm::hostcalls::get_map(MapType::HttpCallResponseHeaders).unwrap_or_default();
        proxy_wasm::hostcalls::log(
            LogLevel::Info,
            &format!("call_pairs token={token} body_size={body} {pairs:?}"),
        )
        .ok();
        let status = self
            .get_http_call_response_header(":status")
            .unwrap_or_default();
        let dispatch = self
            .get_http_call_response_header(":dispatch_status")
            .unwrap_or_default();
        let text = self
            .get_http_call_response_body(0, body)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        proxy_wasm::hostcalls::log(
            LogLevel::Info,
            &format!("response token={token} headers={headers} status={status} dispatch_status={dispatch} body={text}"),
        )
        .ok();
        if self.has("redispatch")
            && let Some(upstream) = self.value("dispatch_on_tick")
        {
            self.dispatch(&upstream);
        }
    }
}

impl RootContext for Root {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        proxy_wasm::hostcalls::log(LogLevel::Info, &format!("vm_start root={}", self.id)).ok();
        true
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self
            .get_plugin_configuration()
            .map(|c| String::from_utf8_lossy(&c).into_owned())
            .unwrap_or_default();
        self.words = config
            .split(',')
            .map(|w| w.trim().to_owned())
            .filter(|w| !w.is_empty())
            .collect();
        proxy_wasm::hostcalls::log(
            LogLevel::Info,
            &format!("configure root={} config={config}", self.id),
        )
        .ok();
        if let Some(ms) = self.value("tick") {
            self.set_tick_period(Duration::from_millis(ms.parse().unwrap_or(100)));
        }
        if self.has("tick_twice") {
            self.set_tick_period(Duration::from_millis(50));
            self.set_tick_period(Duration::from_millis(60));
        }
        if self.has("plugin_name_on_configure") {
            self.log_property("configure", "plugin_name");
        }
        if self.has("log_level") {
            let _ = proxy_wasm::hostcalls::get_log_level();
        }
        if self.has("count") {
            self.counter =
                proxy_wasm::hostcalls::define_metric(MetricType::Counter, "requests").ok();
        }
        !self.has("refuse")
    }

    fn on_tick(&mut self) {
        proxy_wasm::hostcalls::log(LogLevel::Info, &format!("tick root={}", self.id)).ok();
        if let Some(upstream) = self.value("dispatch_on_tick") {
            // `dispatches:N` sends N calls in this one tick.
            let n: u32 = self
                .value("dispatches")
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            for _ in 0..n {
                self.dispatch(&upstream);
            }
        }
        if self.has("kong_prop_on_tick") {
            self.log_property("tick", "kong.route_id");
        }
        if self.has("request_prop_on_tick") {
            for name in [
                "request.path",
                "response.code",
                "upstream.address",
                "connection.id",
                "source.address",
                "destination.port",
                "ngx.request_time",
                "plugin_root_id",
                "no_such.property",
            ] {
                self.log_property("tick", name);
            }
        }
        if self.has("plugin_name_on_tick") {
            self.log_property("tick", "plugin_name");
        }
        if self.has("shared") {
            let (value, cas) = self.get_shared_data("probe/counter");
            let n: u32 = value
                .and_then(|v| String::from_utf8(v).ok())
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let set =
                self.set_shared_data("probe/counter", Some((n + 1).to_string().as_bytes()), cas);
            let stale = self.set_shared_data("probe/counter", Some(b"x"), cas);
            proxy_wasm::hostcalls::log(
                LogLevel::Info,
                &format!("shared n={n} set={set:?} stale={stale:?}"),
            )
            .ok();
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http {
            id: context_id,
            words: self.words.clone(),
            counter: self.counter,
        }))
    }
}

struct Http {
    id: u32,
    words: Vec<String>,
    counter: Option<u32>,
}

impl Http {
    fn has(&self, word: &str) -> bool {
        self.words.iter().any(|w| w == word)
    }
}

impl Context for Http {
    fn on_done(&mut self) -> bool {
        proxy_wasm::hostcalls::log(LogLevel::Info, &format!("done ctx={}", self.id)).ok();
        true
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        if self.get_http_request_header("x-trap").is_some() {
            panic!("probe: asked to trap");
        }
        if self.has("tick_in_request") {
            proxy_wasm::hostcalls::set_tick_period(Duration::from_millis(10)).ok();
        }
        if self.has("deny") {
            self.send_http_response(403, vec![("x-probe", "denied")], Some(b"no"));
            return Action::Pause;
        }
        if self.has("dump_headers") {
            let pairs = self.get_http_request_headers();
            proxy_wasm::hostcalls::log(LogLevel::Info, &format!("request_headers {pairs:?}")).ok();
        }
        if self.has("mutate") {
            self.add_http_request_header("x-added", "1");
            self.set_http_request_header("x-replaced", Some("new"));
            self.set_http_request_header("x-removed", None);
            let names: Vec<String> = self
                .get_http_request_headers()
                .into_iter()
                .filter(|(k, _)| k.starts_with("x-"))
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            proxy_wasm::hostcalls::log(LogLevel::Info, &format!("mutated {}", names.join(" ")))
                .ok();
        }
        let ua = self
            .get_http_request_header("User-Agent")
            .unwrap_or_default();
        proxy_wasm::hostcalls::log(
            LogLevel::Info,
            &format!("headers ctx={} user-agent={ua}", self.id),
        )
        .ok();
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _n: usize, _eos: bool) -> Action {
        let status = self.get_http_response_header(":status").unwrap_or_default();
        proxy_wasm::hostcalls::log(LogLevel::Info, &format!("response_headers status={status}"))
            .ok();
        Action::Continue
    }

    fn on_log(&mut self) {
        proxy_wasm::hostcalls::log(LogLevel::Info, &format!("log ctx={}", self.id)).ok();
        if self.has("props") {
            for name in [
                "kong.route_id",
                "kong.route_name",
                "kong.version",
                "ngx.request_time",
                "ngx.probe_map",
                "plugin_name",
            ] {
                let path: Vec<&str> = name.split('.').collect();
                let value = self
                    .get_property(path)
                    .map(|v| String::from_utf8_lossy(&v).into_owned());
                proxy_wasm::hostcalls::log(LogLevel::Info, &format!("prop {name}={value:?}")).ok();
            }
        }
        if self.has("timing") {
            for name in ["ngx.request_time", "ngx.upstream_response_time"] {
                let path: Vec<&str> = name.split('.').collect();
                let value = self
                    .get_property(path)
                    .map(|v| String::from_utf8_lossy(&v).into_owned());
                proxy_wasm::hostcalls::log(LogLevel::Info, &format!("timing {name}={value:?}"))
                    .ok();
            }
        }
        if self.has("dispatch_in_log") {
            let _ = self.dispatch_http_call(
                "127.0.0.1:9",
                vec![(":method", "GET"), (":path", "/")],
                None,
                vec![],
                Duration::from_secs(1),
            );
        }
        if let Some(id) = self.counter {
            proxy_wasm::hostcalls::increment_metric(id, 1).ok();
        }
        if self.has("now") {
            let now = self
                .get_current_time()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            proxy_wasm::hostcalls::log(LogLevel::Info, &format!("now={now}")).ok();
        }
    }
}
