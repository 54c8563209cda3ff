//! `add-two`: the demo microservice students deploy with Berth.
//!
//! It is a Rust port of the original Flask demo and keeps its HTTP contract,
//! so existing notebooks keep working:
//!
//! * `POST /add_two` with `{"num": 123}` answers `{"output": 125}`;
//! * `GET /` describes the service, `GET /healthz` answers 200;
//! * every error is JSON: `{"error": "<plain words>"}`.
//!
//! The number handling lives in pure functions ([`parse_num`], [`add_two`])
//! so it can be unit tested without HTTP; [`router`] wires them to axum.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fmt;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::error::Category;
use serde_json::value::RawValue;
use tower_http::LatencyUnit;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

/// Port the service listens on when `PORT` is not set (the Flask default).
pub const DEFAULT_PORT: u16 = 5000;

/// Largest request body accepted, in bytes (64 KiB). `{"num": ...}` needs a
/// few dozen bytes; the cap keeps a careless or hostile client from making
/// us buffer megabytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A number as the service understands it.
///
/// Integers and floats are kept apart so that `{"num": 1}` is answered with
/// `{"output": 3}` and `{"num": 1.0}` with `{"output": 3.0}`, as the Python
/// original did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Num {
    /// A whole number written without `.`, `e` or `E`.
    Int(i64),
    /// A number written with a fraction or an exponent. Always finite.
    Float(f64),
}

/// Why a `num` value cannot be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumError {
    /// The value is valid JSON but not a number; the field names what it is
    /// instead, in words ("a string", "null", ...).
    NotANumber(&'static str),
    /// A whole number outside `i64::MIN ..= i64::MAX - 2`, so that either it
    /// or its result does not fit in a signed 64-bit integer.
    IntOutOfRange,
    /// A number with a fraction or exponent too large for a 64-bit float.
    FloatOutOfRange,
}

impl fmt::Display for NumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotANumber(what) => write!(f, "\"num\" must be a number, not {what}"),
            Self::IntOutOfRange => write!(
                f,
                "\"num\" is out of range: whole numbers must be from {} to {} \
                 so that the result fits in a 64-bit integer",
                i64::MIN,
                i64::MAX - 2
            ),
            Self::FloatOutOfRange => {
                f.write_str("\"num\" is out of range for a 64-bit floating-point number")
            }
        }
    }
}

impl std::error::Error for NumError {}

/// Reads a number from the raw JSON text of a value (as kept by
/// [`serde_json::value::RawValue`]).
///
/// We look at the text rather than at a parsed `serde_json::Value` because
/// `serde_json` turns integers wider than `u64` into (lossy) floats, and the
/// contract is that an integer that does not fit is refused, never rounded.
///
/// # Errors
///
/// [`NumError::NotANumber`] for strings, `null`, booleans, arrays, objects
/// and anything that is not a JSON number; [`NumError::IntOutOfRange`] for a
/// whole number outside `i64`; [`NumError::FloatOutOfRange`] for a float
/// literal that overflows `f64` (such as `1e400`).
pub fn parse_num(raw: &str) -> Result<Num, NumError> {
    let text = raw.trim();
    match text {
        "null" => return Err(NumError::NotANumber("null")),
        "true" | "false" => return Err(NumError::NotANumber("a boolean")),
        _ => {}
    }
    match text.as_bytes().first() {
        Some(b'"') => return Err(NumError::NotANumber("a string")),
        Some(b'[') => return Err(NumError::NotANumber("an array")),
        Some(b'{') => return Err(NumError::NotANumber("an object")),
        Some(b'-' | b'0'..=b'9') => {}
        _ => return Err(NumError::NotANumber("valid JSON")),
    }

    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() {
        return Err(NumError::NotANumber("valid JSON"));
    }
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        // The syntax is known good here, so a parse failure can only mean
        // the value does not fit.
        return text
            .parse::<i64>()
            .map(Num::Int)
            .map_err(|_| NumError::IntOutOfRange);
    }
    // Checking the alphabet first stops Rust's float parser from accepting
    // words such as `inf` or `NaN`, which are not JSON.
    if !digits
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return Err(NumError::NotANumber("valid JSON"));
    }
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(Num::Float(x)),
        // Rust rounds literals beyond f64 to infinity instead of failing.
        Ok(_) => Err(NumError::FloatOutOfRange),
        Err(_) => Err(NumError::NotANumber("valid JSON")),
    }
}

/// Adds two, keeping integers as integers and floats as floats.
///
/// # Errors
///
/// [`NumError::IntOutOfRange`] when an integer result would overflow `i64`
/// (we refuse rather than wrap), [`NumError::FloatOutOfRange`] if a float
/// result is not finite (only possible for a non-finite input).
pub fn add_two(num: Num) -> Result<Num, NumError> {
    match num {
        Num::Int(n) => n
            .checked_add(2)
            .map(Num::Int)
            .ok_or(NumError::IntOutOfRange),
        Num::Float(x) => {
            let sum = x + 2.0;
            if sum.is_finite() {
                Ok(Num::Float(sum))
            } else {
                Err(NumError::FloatOutOfRange)
            }
        }
    }
}

/// Why the `PORT` environment variable cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortError {
    /// `PORT` is set but is not valid Unicode.
    NotUnicode,
    /// `PORT` is set but is not a number from 1 to 65535.
    Invalid(String),
}

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotUnicode => f.write_str(
                "invalid PORT environment variable: it is not valid text; \
                 expected a whole number from 1 to 65535",
            ),
            Self::Invalid(value) => write!(
                f,
                "invalid PORT environment variable {value:?}: \
                 expected a whole number from 1 to 65535"
            ),
        }
    }
}

impl std::error::Error for PortError {}

/// Picks the listening port from the value of the `PORT` environment
/// variable: [`DEFAULT_PORT`] when it is unset, the number otherwise.
///
/// Port 0 is refused: it would make the OS pick a random port, which nothing
/// outside the container could find.
///
/// # Errors
///
/// [`PortError`] when `PORT` is set to anything but a number from 1 to 65535
/// (surrounding spaces are forgiven, an empty value is not).
pub fn port_from_env(value: Option<&OsStr>) -> Result<u16, PortError> {
    let Some(value) = value else {
        return Ok(DEFAULT_PORT);
    };
    let text = value.to_str().ok_or(PortError::NotUnicode)?;
    match text.trim().parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(PortError::Invalid(text.to_owned())),
    }
}

/// Builds the HTTP application: routes, JSON error handling, the 64 KiB
/// body limit and one log line per request.
pub fn router() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(healthz))
        .route("/add_two", post(add_two_handler))
        // Must come after the routes: it is applied to the routes registered
        // so far. axum still sets the `Allow` header on these responses.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(
            TraceLayer::new_for_http()
                // Method and path go in the span, so they prefix the single
                // line that `on_response` writes.
                .make_span_with(|request: &Request| {
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                    )
                })
                .on_request(())
                .on_response(
                    DefaultOnResponse::new()
                        .level(Level::INFO)
                        .latency_unit(LatencyUnit::Micros),
                )
                // The status is already in the response line; the default
                // would add a second (ERROR) line for every 5xx.
                .on_failure(()),
        )
}

/// Body of `GET /`.
#[derive(Serialize)]
struct ServiceInfo {
    name: &'static str,
    version: &'static str,
    message: &'static str,
}

async fn index() -> Json<ServiceInfo> {
    Json(ServiceInfo {
        name: env!("CARGO_PKG_NAME"),
        version: env!("CARGO_PKG_VERSION"),
        message: "POST a JSON object like {\"num\": 123} to /add_two with the header \
                  Content-Type: application/json and get {\"output\": 125} back.",
    })
}

/// Body of `GET /healthz`.
#[derive(Serialize)]
struct Health {
    status: &'static str,
}

async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Body of a successful `POST /add_two`.
#[derive(Serialize)]
struct AddTwoResponse {
    output: Num,
}

/// The request body is read as a map of raw values ([`JsonObject`]) rather
/// than into a struct: a derived struct would also accept a JSON array
/// (`[123]`) and would treat `{"num": null}` like a missing field. With the
/// map, anything but an object is refused, and duplicate keys keep the last
/// value, as Python's `json` module (and so the Flask original) does.
async fn add_two_handler(JsonObject(body): JsonObject) -> Result<Json<AddTwoResponse>, ApiError> {
    let raw = body.get("num").ok_or_else(|| {
        ApiError::bad_request("missing \"num\": send a JSON object like {\"num\": 123}".to_owned())
    })?;
    let output = parse_num(raw.get()).and_then(add_two)?;
    Ok(Json(AddTwoResponse { output }))
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no such endpoint: {method} {}; GET / explains how to use this service",
            uri.path()
        ),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "method {method} is not allowed for {}; the Allow header lists the methods that are",
            uri.path()
        ),
    )
}

/// An error answered as `{"error": "<message>"}` with its status code.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

/// Wire form of [`ApiError`].
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

impl ApiError {
    fn new(status: StatusCode, message: String) -> Self {
        Self { status, message }
    }

    fn bad_request(message: String) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: &self.message,
            }),
        )
            .into_response()
    }
}

/// Every problem with the value of `num` is the client's, so a 400.
impl From<NumError> for ApiError {
    fn from(err: NumError) -> Self {
        Self::bad_request(err.to_string())
    }
}

/// Rewords axum's rejections for reading the body (plain text) into our
/// JSON shape: 413 for a body over [`MAX_BODY_BYTES`]; other failures (the
/// client hung up, ...) keep axum's status, which is a 4xx for these.
impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body is larger than the limit of {MAX_BODY_BYTES} bytes"),
            )
        } else {
            Self::new(
                rejection.status(),
                "could not read the request body".to_owned(),
            )
        }
    }
}

/// A request body that is a JSON object, kept as its keys and the raw JSON
/// text of each value.
///
/// Like `axum::Json`, but built by hand: axum's JSON errors are plain text
/// and name the failing field in a way that reads oddly after our prefix
/// (`not valid JSON: num: expected value`), and it answers 422 where we
/// answer 400. Status codes: 415 for a missing or non-JSON `Content-Type`,
/// 413 for a body over [`MAX_BODY_BYTES`] (enforced by `DefaultBodyLimit`,
/// which `Bytes` obeys), and 400 for everything wrong with the body itself,
/// so that one code means "fix your request body", as the Flask original
/// answered bad JSON with 400.
struct JsonObject(HashMap<String, Box<RawValue>>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok());
        if !content_type.is_some_and(is_json_content_type) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the body as JSON with the header Content-Type: application/json".to_owned(),
            ));
        }
        let body = Bytes::from_request(req, state).await?;
        serde_json::from_slice(&body)
            .map(Self)
            .map_err(|err| match err.classify() {
                // Valid JSON, but not an object (an array, a number, ...).
                Category::Data => ApiError::bad_request(
                    "request body must be a JSON object like {\"num\": 123}".to_owned(),
                ),
                // serde_json's message says what broke and where (line and
                // column), which is what someone fixing their JSON needs.
                Category::Syntax | Category::Eof | Category::Io => {
                    ApiError::bad_request(format!("request body is not valid JSON: {err}"))
                }
            })
    }
}

/// Whether a `Content-Type` value announces JSON: `application/json` or a
/// `+json` type such as `application/problem+json`, in any case, with or
/// without parameters (`; charset=utf-8`). The same rule as `axum::Json`.
fn is_json_content_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    let subtype = subtype.to_ascii_lowercase();
    kind.eq_ignore_ascii_case("application") && (subtype == "json" || subtype.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_stay_integers() {
        assert_eq!(parse_num("123"), Ok(Num::Int(123)));
        assert_eq!(add_two(Num::Int(123)), Ok(Num::Int(125)));
        assert_eq!(parse_num("0"), Ok(Num::Int(0)));
        assert_eq!(parse_num("-0"), Ok(Num::Int(0)));
    }

    #[test]
    fn negative_integers_work() {
        assert_eq!(parse_num("-5").and_then(add_two), Ok(Num::Int(-3)));
        assert_eq!(parse_num("-1").and_then(add_two), Ok(Num::Int(1)));
        assert_eq!(
            parse_num("-9223372036854775808").and_then(add_two),
            Ok(Num::Int(i64::MIN + 2))
        );
    }

    #[test]
    fn floats_stay_floats() {
        assert_eq!(parse_num("1.5").and_then(add_two), Ok(Num::Float(3.5)));
        assert_eq!(parse_num("1.0").and_then(add_two), Ok(Num::Float(3.0)));
        assert_eq!(parse_num("-2.5").and_then(add_two), Ok(Num::Float(-0.5)));
        assert_eq!(parse_num("1e2").and_then(add_two), Ok(Num::Float(102.0)));
        assert_eq!(parse_num("1E-1"), Ok(Num::Float(0.1)));
        assert_eq!(parse_num("-1.5e+2"), Ok(Num::Float(-150.0)));
    }

    #[test]
    fn largest_integer_that_fits() {
        assert_eq!(
            parse_num("9223372036854775805").and_then(add_two),
            Ok(Num::Int(i64::MAX))
        );
    }

    #[test]
    fn integer_overflow_is_refused_not_wrapped() {
        for text in [
            "9223372036854775806",
            "9223372036854775807",  // i64::MAX
            "9223372036854775808",  // i64::MAX + 1: still fits u64
            "18446744073709551615", // u64::MAX
            // Past u64, where serde_json would quietly give a float.
            "18446744073709551616",
            "100000000000000000000000000000",
            "-9223372036854775809", // i64::MIN - 1
        ] {
            assert_eq!(
                parse_num(text).and_then(add_two),
                Err(NumError::IntOutOfRange),
                "{text}"
            );
        }
    }

    #[test]
    fn float_overflow_is_refused() {
        assert_eq!(parse_num("1e400"), Err(NumError::FloatOutOfRange));
        assert_eq!(parse_num("-1e400"), Err(NumError::FloatOutOfRange));
        // The largest float plus two rounds back to itself: still finite.
        assert_eq!(add_two(Num::Float(f64::MAX)), Ok(Num::Float(f64::MAX)),);
        assert_eq!(
            add_two(Num::Float(f64::INFINITY)),
            Err(NumError::FloatOutOfRange)
        );
    }

    #[test]
    fn non_numbers_are_named() {
        assert_eq!(parse_num("\"123\""), Err(NumError::NotANumber("a string")));
        assert_eq!(parse_num("null"), Err(NumError::NotANumber("null")));
        assert_eq!(parse_num("true"), Err(NumError::NotANumber("a boolean")));
        assert_eq!(parse_num("false"), Err(NumError::NotANumber("a boolean")));
        assert_eq!(parse_num("[1]"), Err(NumError::NotANumber("an array")));
        assert_eq!(parse_num("{}"), Err(NumError::NotANumber("an object")));
    }

    #[test]
    fn text_that_is_not_json_is_refused() {
        for text in [
            "", "-", "NaN", "inf", "-inf", "12abc", "+5", "0x10", "1_000",
        ] {
            assert_eq!(
                parse_num(text),
                Err(NumError::NotANumber("valid JSON")),
                "{text:?}"
            );
        }
    }

    #[test]
    fn error_messages_are_plain_words() {
        assert_eq!(
            NumError::NotANumber("a string").to_string(),
            "\"num\" must be a number, not a string"
        );
        assert_eq!(
            NumError::IntOutOfRange.to_string(),
            "\"num\" is out of range: whole numbers must be from -9223372036854775808 \
             to 9223372036854775805 so that the result fits in a 64-bit integer"
        );
    }

    #[test]
    fn json_content_types_are_recognised() {
        for value in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            " application/json ;charset=UTF-8",
            "application/problem+json",
        ] {
            assert!(is_json_content_type(value), "{value:?}");
        }
        for value in [
            "",
            "text/plain",
            "text/json",
            "application/x-www-form-urlencoded",
            "application/jsonx",
            "application",
            "not a mime type",
        ] {
            assert!(!is_json_content_type(value), "{value:?}");
        }
    }

    #[test]
    fn port_defaults_to_5000() {
        assert_eq!(port_from_env(None), Ok(5000));
    }

    #[test]
    fn port_is_read_from_env() {
        assert_eq!(port_from_env(Some(OsStr::new("8080"))), Ok(8080));
        assert_eq!(port_from_env(Some(OsStr::new(" 8080\n"))), Ok(8080));
        assert_eq!(port_from_env(Some(OsStr::new("65535"))), Ok(65535));
    }

    #[test]
    fn bad_port_is_an_error() {
        for text in ["", "abc", "0", "65536", "-1", "80.5", "5000x"] {
            assert_eq!(
                port_from_env(Some(OsStr::new(text))),
                Err(PortError::Invalid(text.to_owned())),
                "{text:?}"
            );
        }
        assert_eq!(
            PortError::Invalid("abc".to_owned()).to_string(),
            "invalid PORT environment variable \"abc\": expected a whole number from 1 to 65535"
        );
    }

    #[cfg(unix)]
    #[test]
    fn non_unicode_port_is_an_error() {
        use std::os::unix::ffi::OsStrExt as _;
        assert_eq!(
            port_from_env(Some(OsStr::from_bytes(b"\xff"))),
            Err(PortError::NotUnicode)
        );
    }
}
