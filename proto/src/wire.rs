//! The HTTP contract between producers and the collector, named once for
//! both ends and their tests: paths, the batch content type, and the error
//! codes a producer acts on.

/// Where producers POST batches.
pub const BATCHES_PATH: &str = "/v1/batches";
/// Where Kong's http-log plugin POSTs its entries.
pub const HTTP_LOG_PATH: &str = "/v1/kong/http-log";
/// The content type of a batch body.
pub const BATCH_CONTENT_TYPE: &str = "application/x-protobuf";
/// The header that carries a batch's signature (see [`crate::signing`]).
pub const SIGNATURE_HEADER: &str = "authorization";
/// The code of a 409 that says the collector lost the producer's session
/// dictionary: the producer must define everything again.
pub const UNKNOWN_DICTIONARY: &str = "unknown_dictionary";
/// The code of a 400 that says the collector does not read the batch's
/// schema revision: a producer that wrote addresses inline (revision 3)
/// writes them as strings instead.
pub const UNSUPPORTED_REVISION: &str = "unsupported_revision";
/// Longest error body a producer reads for a code.
pub const MAX_ERROR_BODY_BYTES: usize = 4096;
