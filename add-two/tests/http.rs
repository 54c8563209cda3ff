//! The HTTP contract of `add-two`, checked over a real socket: each test
//! starts the router on an ephemeral loopback port and talks to it with
//! reqwest, asserting the status and the exact JSON body.

use std::future::IntoFuture as _;

use reqwest::header::{ALLOW, CONTENT_TYPE};
use tokio::net::TcpListener;

/// A server of our own, for one test; it stops with the test's runtime.
struct App {
    base: String,
    client: reqwest::Client,
}

/// What a test checks about a response.
#[derive(Debug)]
struct Reply {
    status: u16,
    content_type: Option<String>,
    allow: Option<String>,
    body: String,
}

impl App {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("loopback should have a free ephemeral port");
        let addr = listener
            .local_addr()
            .expect("a bound listener has a local address");
        tokio::spawn(axum::serve(listener, add_two::router()).into_future());
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("the test server should answer");
        let header = |name| {
            response
                .headers()
                .get(name)
                .map(|v: &reqwest::header::HeaderValue| {
                    v.to_str().expect("header is ASCII").to_owned()
                })
        };
        let status = response.status().as_u16();
        let content_type = header(CONTENT_TYPE);
        let allow = header(ALLOW);
        let body = response.text().await.expect("the body should be readable");
        Reply {
            status,
            content_type,
            allow,
            body,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    /// POSTs `body` to `/add_two` with `Content-Type: application/json`.
    async fn add_two(&self, body: impl Into<String>) -> Reply {
        self.add_two_with(Some("application/json"), body).await
    }

    async fn add_two_with(&self, content_type: Option<&str>, body: impl Into<String>) -> Reply {
        let mut request = self
            .client
            .post(format!("{}/add_two", self.base))
            .body(body.into());
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        self.send(request).await
    }
}

/// Asserts the status and the exact body, and that the body is JSON.
#[track_caller]
fn assert_reply(reply: &Reply, status: u16, body: &str) {
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (status, body),
        "{reply:?}"
    );
    assert_eq!(
        reply.content_type.as_deref(),
        Some("application/json"),
        "{reply:?}"
    );
}

const INT_RANGE_ERROR: &str = r#"{"error":"\"num\" is out of range: whole numbers must be from -9223372036854775808 to 9223372036854775805 so that the result fits in a 64-bit integer"}"#;

#[tokio::test]
async fn adds_two_to_an_integer() {
    let app = App::start().await;
    assert_reply(
        &app.add_two(r#"{"num": 123}"#).await,
        200,
        r#"{"output":125}"#,
    );
    assert_reply(&app.add_two(r#"{"num": 0}"#).await, 200, r#"{"output":2}"#);
}

#[tokio::test]
async fn adds_two_to_a_negative_integer() {
    let app = App::start().await;
    assert_reply(
        &app.add_two(r#"{"num": -5}"#).await,
        200,
        r#"{"output":-3}"#,
    );
    assert_reply(&app.add_two(r#"{"num": -1}"#).await, 200, r#"{"output":1}"#);
    assert_reply(
        &app.add_two(r#"{"num": -9223372036854775808}"#).await,
        200,
        r#"{"output":-9223372036854775806}"#,
    );
}

#[tokio::test]
async fn adds_two_to_a_float_and_answers_a_float() {
    let app = App::start().await;
    assert_reply(
        &app.add_two(r#"{"num": 1.5}"#).await,
        200,
        r#"{"output":3.5}"#,
    );
    assert_reply(
        &app.add_two(r#"{"num": -2.5}"#).await,
        200,
        r#"{"output":-0.5}"#,
    );
    // A float that happens to be whole stays a float.
    assert_reply(
        &app.add_two(r#"{"num": 1.0}"#).await,
        200,
        r#"{"output":3.0}"#,
    );
    assert_reply(
        &app.add_two(r#"{"num": 1e2}"#).await,
        200,
        r#"{"output":102.0}"#,
    );
}

#[tokio::test]
async fn largest_integer_that_fits_is_answered() {
    let app = App::start().await;
    assert_reply(
        &app.add_two(r#"{"num": 9223372036854775805}"#).await,
        200,
        r#"{"output":9223372036854775807}"#,
    );
}

#[tokio::test]
async fn integer_overflow_is_a_400_not_a_wrap() {
    let app = App::start().await;
    for num in [
        "9223372036854775806",
        "9223372036854775807",  // i64::MAX
        "18446744073709551615", // u64::MAX
        // Past u64: serde_json alone would turn this into a float.
        "18446744073709551616",
        "-9223372036854775809", // i64::MIN - 1
    ] {
        let reply = app.add_two(format!(r#"{{"num": {num}}}"#)).await;
        assert_reply(&reply, 400, INT_RANGE_ERROR);
    }
}

#[tokio::test]
async fn float_overflow_is_a_400() {
    let app = App::start().await;
    assert_reply(
        &app.add_two(r#"{"num": 1e400}"#).await,
        400,
        r#"{"error":"\"num\" is out of range for a 64-bit floating-point number"}"#,
    );
}

#[tokio::test]
async fn missing_num_is_a_400() {
    let app = App::start().await;
    let expected = r#"{"error":"missing \"num\": send a JSON object like {\"num\": 123}"}"#;
    assert_reply(&app.add_two("{}").await, 400, expected);
    assert_reply(&app.add_two(r#"{"number": 1}"#).await, 400, expected);
}

#[tokio::test]
async fn string_num_is_a_400() {
    let app = App::start().await;
    assert_reply(
        &app.add_two(r#"{"num": "123"}"#).await,
        400,
        r#"{"error":"\"num\" must be a number, not a string"}"#,
    );
}

#[tokio::test]
async fn null_num_is_a_400() {
    let app = App::start().await;
    assert_reply(
        &app.add_two(r#"{"num": null}"#).await,
        400,
        r#"{"error":"\"num\" must be a number, not null"}"#,
    );
}

#[tokio::test]
async fn bool_num_is_a_400() {
    let app = App::start().await;
    assert_reply(
        &app.add_two(r#"{"num": true}"#).await,
        400,
        r#"{"error":"\"num\" must be a number, not a boolean"}"#,
    );
}

#[tokio::test]
async fn array_or_object_num_is_a_400() {
    let app = App::start().await;
    assert_reply(
        &app.add_two(r#"{"num": [1]}"#).await,
        400,
        r#"{"error":"\"num\" must be a number, not an array"}"#,
    );
    assert_reply(
        &app.add_two(r#"{"num": {"n": 1}}"#).await,
        400,
        r#"{"error":"\"num\" must be a number, not an object"}"#,
    );
}

#[tokio::test]
async fn body_that_is_not_an_object_is_a_400() {
    let app = App::start().await;
    let expected = r#"{"error":"request body must be a JSON object like {\"num\": 123}"}"#;
    for body in ["[123]", "123", r#""num""#, "null"] {
        assert_reply(&app.add_two(body).await, 400, expected);
    }
}

#[tokio::test]
async fn malformed_json_is_a_400() {
    let app = App::start().await;
    assert_reply(
        &app.add_two(r#"{"num": 123"#).await,
        400,
        r#"{"error":"request body is not valid JSON: EOF while parsing an object at line 1 column 11"}"#,
    );
    // The message is serde_json's own, without a field path in front.
    assert_reply(
        &app.add_two(r#"{"num": [1,}"#).await,
        400,
        r#"{"error":"request body is not valid JSON: expected value at line 1 column 12"}"#,
    );
    assert_reply(
        &app.add_two("{num: 123}").await,
        400,
        r#"{"error":"request body is not valid JSON: key must be a string at line 1 column 2"}"#,
    );
    assert_reply(
        &app.add_two("").await,
        400,
        r#"{"error":"request body is not valid JSON: EOF while parsing a value at line 1 column 0"}"#,
    );
    assert_reply(
        &app.add_two(r#"{"num": 1} trailing"#).await,
        400,
        r#"{"error":"request body is not valid JSON: trailing characters at line 1 column 12"}"#,
    );
}

#[tokio::test]
async fn wrong_or_missing_content_type_is_a_415() {
    let app = App::start().await;
    let expected =
        r#"{"error":"send the body as JSON with the header Content-Type: application/json"}"#;
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("text/json"),
        Some("not a mime type"),
        None,
    ] {
        let reply = app.add_two_with(content_type, r#"{"num": 123}"#).await;
        assert_reply(&reply, 415, expected);
    }
}

#[tokio::test]
async fn json_content_type_with_charset_is_accepted() {
    let app = App::start().await;
    let reply = app
        .add_two_with(Some("application/json; charset=utf-8"), r#"{"num": 1}"#)
        .await;
    assert_reply(&reply, 200, r#"{"output":3}"#);
}

#[tokio::test]
async fn unknown_fields_are_ignored_and_the_last_num_wins() {
    let app = App::start().await;
    assert_reply(
        &app.add_two(r#"{"num": 1, "note": "hi"}"#).await,
        200,
        r#"{"output":3}"#,
    );
    // Python's json module, and so the Flask original, keeps the last one.
    assert_reply(
        &app.add_two(r#"{"num": 1, "num": 10}"#).await,
        200,
        r#"{"output":12}"#,
    );
}

/// `{"num": 1, "pad": "xxx..."}` padded to exactly `len` bytes.
fn padded_body(len: usize) -> String {
    let frame = r#"{"num": 1, "pad": ""}"#;
    let pad = "x".repeat(len - frame.len());
    let body = format!(r#"{{"num": 1, "pad": "{pad}"}}"#);
    assert_eq!(body.len(), len);
    body
}

#[tokio::test]
async fn body_over_64_kib_is_a_413() {
    let app = App::start().await;
    assert_reply(
        &app.add_two(padded_body(64 * 1024 + 1)).await,
        413,
        r#"{"error":"request body is larger than the limit of 65536 bytes"}"#,
    );
    assert_reply(
        &app.add_two(padded_body(1024 * 1024)).await,
        413,
        r#"{"error":"request body is larger than the limit of 65536 bytes"}"#,
    );
}

#[tokio::test]
async fn body_of_exactly_64_kib_is_accepted() {
    let app = App::start().await;
    assert_reply(
        &app.add_two(padded_body(64 * 1024)).await,
        200,
        r#"{"output":3}"#,
    );
}

#[tokio::test]
async fn index_describes_the_service() {
    let app = App::start().await;
    let expected = format!(
        r#"{{"name":"add-two","version":"{}","message":"POST a JSON object like {{\"num\": 123}} to /add_two with the header Content-Type: application/json and get {{\"output\": 125}} back."}}"#,
        env!("CARGO_PKG_VERSION")
    );
    assert_reply(&app.get("/").await, 200, &expected);
}

#[tokio::test]
async fn healthz_is_ok() {
    let app = App::start().await;
    assert_reply(&app.get("/healthz").await, 200, r#"{"status":"ok"}"#);
}

#[tokio::test]
async fn unknown_route_is_a_404() {
    let app = App::start().await;
    assert_reply(
        &app.get("/nope").await,
        404,
        r#"{"error":"no such endpoint: GET /nope; GET / explains how to use this service"}"#,
    );
    let reply = app
        .send(app.client.post(format!("{}/add_two/extra", app.base)))
        .await;
    assert_reply(
        &reply,
        404,
        r#"{"error":"no such endpoint: POST /add_two/extra; GET / explains how to use this service"}"#,
    );
}

#[tokio::test]
async fn wrong_method_is_a_405() {
    let app = App::start().await;

    let reply = app.get("/add_two").await;
    assert_reply(
        &reply,
        405,
        r#"{"error":"method GET is not allowed for /add_two; the Allow header lists the methods that are"}"#,
    );
    assert_eq!(reply.allow.as_deref(), Some("POST"));

    let reply = app
        .send(app.client.post(format!("{}/healthz", app.base)))
        .await;
    assert_reply(
        &reply,
        405,
        r#"{"error":"method POST is not allowed for /healthz; the Allow header lists the methods that are"}"#,
    );
    assert_eq!(reply.allow.as_deref(), Some("GET,HEAD"));

    let reply = app.send(app.client.delete(format!("{}/", app.base))).await;
    assert_reply(
        &reply,
        405,
        r#"{"error":"method DELETE is not allowed for /; the Allow header lists the methods that are"}"#,
    );
}
