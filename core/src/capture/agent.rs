//! The agent family of a request, from its User-Agent header, by the rules
//! in `agents.tsv` (the one file to edit to add an agent). Results are
//! cached per worker, because a gateway sees the same few hundred agents
//! over and over.

use std::sync::OnceLock;

use kong_looker_proto::v1::AgentCategory;

use super::cache::Cache;
use kong_looker_proto::bytes::{Key, Query};

/// Bytes of the header the rules look at.
pub const MAX_AGENT_BYTES: usize = 512;
/// Entries the per-worker cache holds before it starts over.
const CACHE_ENTRIES: usize = 1024;

/// One rule of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentRule {
    /// Lowercase substring to look for.
    pub pattern: String,
    /// Family.
    pub category: AgentCategory,
    /// Name recorded.
    pub name: String,
}

/// The rules of `agents.tsv`, parsed once.
pub fn rules() -> &'static [AgentRule] {
    static RULES: OnceLock<Vec<AgentRule>> = OnceLock::new();
    RULES.get_or_init(|| parse_rules(include_str!("agents.tsv")))
}

/// Parses the table; malformed lines are skipped (a test checks there are
/// none in the shipped file).
pub fn parse_rules(text: &str) -> Vec<AgentRule> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let pattern = fields.next()?.trim().to_ascii_lowercase();
            let category = category_from_word(fields.next()?.trim())?;
            let name = fields.next()?.trim().to_owned();
            (!pattern.is_empty() && !name.is_empty() && fields.next().is_none()).then_some(
                AgentRule {
                    pattern,
                    category,
                    name,
                },
            )
        })
        .collect()
}

fn category_from_word(word: &str) -> Option<AgentCategory> {
    Some(match word {
        "browser" => AgentCategory::Browser,
        "cli" => AgentCategory::Cli,
        "library" => AgentCategory::Library,
        "api_tool" => AgentCategory::ApiTool,
        "monitor" => AgentCategory::Monitor,
        "search_crawler" => AgentCategory::SearchCrawler,
        "ai_crawler" => AgentCategory::AiCrawler,
        "ai_search" => AgentCategory::AiSearch,
        "ai_assistant" => AgentCategory::AiAssistant,
        "mcp_client" => AgentCategory::McpClient,
        "other_bot" => AgentCategory::OtherBot,
        _ => return None,
    })
}

/// Classifies User-Agent headers with a bounded cache.
#[derive(Debug)]
pub struct AgentClassifier {
    cache: Cache<Key<[u8]>, Option<usize>>,
}

impl AgentClassifier {
    /// A classifier whose cache hashes with `seed`: clients choose the
    /// keys, so the seed must be the instance's own random one.
    pub fn new(seed: u64) -> Self {
        AgentClassifier {
            cache: Cache::new(CACHE_ENTRIES, usize::MAX, seed),
        }
    }

    /// The rule that matches `user_agent`, if any. Taken as bytes: a
    /// header met before costs a hash and a lookup, not a UTF-8 check.
    pub fn classify<T: AsRef<[u8]> + ?Sized>(
        &mut self,
        user_agent: &T,
    ) -> Option<&'static AgentRule> {
        self.classify_keyed(user_agent).map(|(rule, _)| rule)
    }

    /// [`AgentClassifier::classify`], with a key that stands for the rule
    /// (its place in the table, from 1) for the builder's memo.
    pub fn classify_keyed<T: AsRef<[u8]> + ?Sized>(
        &mut self,
        user_agent: &T,
    ) -> Option<(&'static AgentRule, u64)> {
        let ua = user_agent.as_ref();
        let ua = ua.get(..MAX_AGENT_BYTES).unwrap_or(ua);
        if ua.is_empty() {
            return None;
        }
        let index = match self.cache.get(&Query(ua)) {
            Some(hit) => *hit,
            None => {
                let found = find(ua);
                self.cache.insert(Key(ua.into()), found, 0);
                found
            }
        }?;
        let rule = rules().get(index)?;
        Some((rule, u64::try_from(index).ok()?.checked_add(1)?))
    }
}

/// Index of the first rule whose pattern occurs in `ua`, ignoring case.
/// Patterns are ASCII, so replacing what is not UTF-8 changes no match.
fn find(ua: &[u8]) -> Option<usize> {
    let lower = String::from_utf8_lossy(ua).to_ascii_lowercase();
    rules()
        .iter()
        .position(|r| lower.contains(r.pattern.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn name(ua: &str) -> Option<(AgentCategory, String)> {
        AgentClassifier::new(7)
            .classify(ua)
            .map(|r| (r.category, r.name.clone()))
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_shipped_table_parses_completely() {
        let text = include_str!("agents.tsv");
        let lines = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .count();
        assert_eq!(rules().len(), lines, "every rule line parses");
        // `find` relies on it: a replaced invalid byte matches no pattern.
        assert!(rules().iter().all(|r| r.pattern.is_ascii()));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn invalid_utf8_around_a_name_still_matches() {
        let mut c = AgentClassifier::new(7);
        let rule = c
            .classify(b"\xff\xfecurl/8.11.0 \xc3(")
            .map(|r| r.name.as_str());
        assert_eq!(rule, Some("curl"));
        assert_eq!(c.classify(&[0xff_u8; 600][..]), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn ai_agents_are_named_before_the_browser_they_pretend_to_be() {
        let gpt = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)";
        assert_eq!(name(gpt), Some((AgentCategory::AiCrawler, "GPTBot".into())));
        let user = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; ChatGPT-User/1.0; +https://openai.com/bot";
        assert_eq!(
            name(user),
            Some((AgentCategory::AiAssistant, "ChatGPT-User".into()))
        );
        assert_eq!(
            name("Mozilla/5.0 (compatible; ClaudeBot/1.0)").unwrap().1,
            "ClaudeBot"
        );
        assert_eq!(
            name("claude-code/1.0.31 (mcp)").unwrap().0,
            AgentCategory::McpClient
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn common_clients_and_browsers() {
        assert_eq!(name("curl/8.11.0").unwrap().1, "curl");
        assert_eq!(name("python-requests/2.32.3").unwrap().1, "python-requests");
        assert_eq!(name("Go-http-client/2.0").unwrap().1, "Go-http-client");
        assert_eq!(name("okhttp/4.12.0").unwrap().1, "okhttp");
        assert_eq!(name("PostmanRuntime/7.43.0").unwrap().1, "Postman");
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0";
        assert_eq!(name(edge).unwrap().1, "Edge");
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        assert_eq!(name(chrome).unwrap().1, "Chrome");
        assert_eq!(name(""), None);
        assert_eq!(name("SomethingUnheardOf/1.0"), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_cache_stays_bounded() {
        let mut c = AgentClassifier::new(7);
        for i in 0..5000 {
            c.classify(&format!("agent-{i}"));
        }
        assert!(c.cache.len() <= CACHE_ENTRIES);
    }
}
