//! AWS Signature Version 4: the access key id, region and service from an
//! `Authorization: AWS4-HMAC-SHA256 Credential=AKID/date/region/service/
//! aws4_request, SignedHeaders=..., Signature=...` header. The signature and
//! everything after the credential scope are never kept.

/// Longest header the parser reads.
pub const MAX_HEADER_BYTES: usize = 4096;

/// What a SigV4 header identifies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigV4<'a> {
    /// The access key id, e.g. `AKIAIOSFODNN7EXAMPLE`.
    pub access_key: &'a str,
    /// Region, e.g. `us-east-1`.
    pub region: &'a str,
    /// Service, e.g. `execute-api`.
    pub service: &'a str,
}

/// Parses a SigV4 `Authorization` header value; `None` if it is not one.
pub fn parse(header: &str) -> Option<SigV4<'_>> {
    let header = super::cut(header, MAX_HEADER_BYTES);
    let rest = header.trim_start().strip_prefix("AWS4-HMAC-SHA256")?;
    let credential = rest
        .split(',')
        .map(str::trim)
        .find_map(|part| part.strip_prefix("Credential="))?;
    let mut scope = credential.split('/');
    let access_key = scope.next()?;
    let _date = scope.next()?;
    let region = scope.next()?;
    let service = scope.next()?;
    if scope.next()? != "aws4_request" {
        return None;
    }
    let valid = |s: &str, max: usize| {
        !s.is_empty()
            && s.len() <= max
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (valid(access_key, 128) && valid(region, 64) && valid(service, 64)).then_some(SigV4 {
        access_key,
        region,
        service,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    const HEADER: &str = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

    #[wasm_bindgen_test(unsupported = test)]
    fn reads_key_region_and_service_never_the_signature() {
        let s = parse(HEADER).unwrap();
        assert_eq!(
            s,
            SigV4 {
                access_key: "AKIAIOSFODNN7EXAMPLE",
                region: "us-east-1",
                service: "iam"
            }
        );
        assert!(!format!("{s:?}").contains("5d672d79"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn anything_else_is_not_sigv4() {
        assert_eq!(parse("Bearer abc.def.ghi"), None);
        assert_eq!(parse("AWS4-HMAC-SHA256 Signature=abc"), None);
        assert_eq!(
            parse("AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iam"),
            None
        );
        assert_eq!(
            parse("AWS4-HMAC-SHA256 Credential=AK ID/d/r/s/aws4_request"),
            None
        );
        assert_eq!(parse(&"AWS4-HMAC-SHA256 ".repeat(10_000)), None);
    }
}
