//! HTTP/1.1 to one target over kept-alive connections, each owned by one task.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue};
use http::{Method, Uri};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::replica::{QUEUE_WAIT_HEADER, SERVICE_TIME_HEADER};
use crate::LoadError;

/// Where the load goes: an `http://host:port/path` URL, resolved once at start so that every
/// request goes to the same address.
#[derive(Debug, Clone)]
pub struct Target {
    url: String,
    addr: SocketAddr,
    authority: String,
    path: String,
}

impl Target {
    /// Parse and resolve `url`. Only plain `http://` is supported.
    pub async fn resolve(url: &str) -> Result<Target, LoadError> {
        let bad = |reason: &str| LoadError::BadUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let uri: Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => return Err(bad("https is not supported; give an http:// URL")),
            Some(other) => return Err(bad(&format!("unsupported scheme {other:?}"))),
            None => {
                return Err(bad(
                    "expected an absolute URL such as http://127.0.0.1:8080/",
                ))
            }
        }
        let host = uri
            .host()
            .ok_or_else(|| bad("the URL has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(80);
        let addr = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| LoadError::Unresolvable {
                url: url.to_string(),
                reason: e.to_string(),
            })?
            .next()
            .ok_or_else(|| LoadError::Unresolvable {
                url: url.to_string(),
                reason: "no address".into(),
            })?;
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_else(|| format!("{host}:{port}"));
        let path = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        Ok(Target {
            url: url.to_string(),
            addr,
            authority,
            path,
        })
    }

    /// The URL as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `host:port` as given.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Path and query, `/` at least.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The resolved address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The same server with another path.
    pub(crate) fn with_path(&self, path: &str) -> Target {
        Target {
            url: format!("http://{}{path}", self.authority),
            path: path.to_string(),
            ..self.clone()
        }
    }
}

/// What each request looks like.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    /// HTTP method (`POST` for a Cortex predict endpoint).
    pub method: Method,
    /// Body sent with every request.
    pub body: Bytes,
    /// `Content-Type` of the body.
    pub content_type: HeaderValue,
    /// Extra headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Default for RequestTemplate {
    fn default() -> Self {
        Self {
            method: Method::POST,
            body: Bytes::from_static(b"{}"),
            content_type: HeaderValue::from_static("application/json"),
            headers: Vec::new(),
        }
    }
}

/// The answer to one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Answer {
    pub status: u16,
    /// Service time the server reported in its response header, milliseconds.
    pub service_ms: Option<f64>,
    /// Queue wait the server reported, milliseconds.
    pub queue_wait_ms: Option<f64>,
}

/// Builds requests for one target and opens connections to it.
pub(crate) struct Client {
    target: Target,
    /// Request line and fixed headers, up to (not including) the blank line.
    head: Vec<u8>,
    /// The same without `Content-Length`, for requests with their own body.
    head_without_length: Vec<u8>,
    body: Bytes,
    /// A HEAD request's answer has no body whatever its headers say.
    is_head: bool,
}

/// Why one exchange (connect, send, read the answer) failed. The message is what the results
/// and the per-request CSV show as the request's error, so it stays short and stable.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    /// Nothing listens at the target.
    #[error("connection refused")]
    Refused,
    /// The TCP connect did not complete.
    #[error("connect timed out")]
    ConnectTimedOut,
    /// Any other connect failure.
    #[error("connect: {0}")]
    Connect(std::io::Error),
    /// The server closed the connection before the answer was complete.
    #[error("connection closed by the server")]
    Closed,
    /// The server reset the connection.
    #[error("connection reset")]
    Reset,
    /// Reading failed otherwise.
    #[error("read: {0}")]
    Read(std::io::Error),
    /// Writing the request failed otherwise.
    #[error("write: {0}")]
    Write(std::io::Error),
    /// The answer's `Content-Length` is not a number.
    #[error("bad Content-Length {0:?} in the answer")]
    BadContentLength(String),
    /// The answer's head does not fit in [`MAX_HEAD`].
    #[error("response head larger than 64 KiB")]
    HeadTooLarge,
    /// The answer's head is not HTTP/1.x.
    #[error("malformed response: {0}")]
    Malformed(httparse::Error),
    /// A chunk size beyond `usize`.
    #[error("chunk larger than memory")]
    ChunkTooLarge,
    /// A chunked body that does not parse.
    #[error("malformed chunked body")]
    MalformedChunk,
}

/// One kept-alive HTTP/1.1 connection, owned by one task: a request is one write of prebuilt
/// bytes and the answer is parsed in place with `httparse`, so the per-request cost stays close
/// to wrk's (about 1.6 times the rate of hyper's `client::conn::http1` on the same task layout,
/// see the README's load-generator section).
pub(crate) struct Connection {
    stream: TcpStream,
    buf: BytesMut,
    last_used: Instant,
}

/// After this long idle, check that the server has not closed the connection before reusing it.
const IDLE_CHECK: Duration = Duration::from_millis(500);
/// Largest response head read (headers beyond it are an error).
const MAX_HEAD: usize = 64 * 1024;

fn read_error(e: std::io::Error) -> ExchangeError {
    match e.kind() {
        std::io::ErrorKind::ConnectionReset => ExchangeError::Reset,
        _ => ExchangeError::Read(e),
    }
}

impl Connection {
    /// Whether the server closed it while it sat idle.
    pub(crate) fn is_closed(&mut self) -> bool {
        if self.last_used.elapsed() < IDLE_CHECK {
            return false;
        }
        let mut probe = [0u8; 1];
        !matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// Read more bytes; an end of stream is an error (the answer is incomplete).
    async fn fill(&mut self) -> Result<(), ExchangeError> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(8192);
        }
        match self.stream.read_buf(&mut self.buf).await {
            Ok(0) => Err(ExchangeError::Closed),
            Ok(_) => Ok(()),
            Err(e) => Err(read_error(e)),
        }
    }
}

impl Client {
    pub(crate) fn new(target: Target, template: RequestTemplate) -> Result<Self, LoadError> {
        let header_ok = |v: &[u8]| !v.iter().any(|b| *b == b'\r' || *b == b'\n');
        if !header_ok(target.authority.as_bytes()) || !header_ok(target.path.as_bytes()) {
            return Err(LoadError::BadUrl {
                url: target.url.clone(),
                reason: "control characters in the URL".into(),
            });
        }
        let header = |head: &mut Vec<u8>, name: &[u8], value: &[u8]| {
            head.extend_from_slice(name);
            head.extend_from_slice(b": ");
            head.extend_from_slice(value);
            head.extend_from_slice(b"\r\n");
        };
        let mut base = Vec::new();
        base.extend_from_slice(template.method.as_str().as_bytes());
        base.push(b' ');
        base.extend_from_slice(target.path.as_bytes());
        base.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        base.extend_from_slice(target.authority.as_bytes());
        base.extend_from_slice(b"\r\n");
        for (name, value) in &template.headers {
            header(&mut base, name.as_str().as_bytes(), value.as_bytes());
        }
        let mut head = base.clone();
        let mut head_without_length = base;
        header(
            &mut head_without_length,
            b"Content-Type",
            template.content_type.as_bytes(),
        );
        if !template.body.is_empty() || template.method != Method::GET {
            header(&mut head, b"Content-Type", template.content_type.as_bytes());
            header(
                &mut head,
                b"Content-Length",
                template.body.len().to_string().as_bytes(),
            );
        }
        Ok(Self {
            is_head: template.method == Method::HEAD,
            target,
            head,
            head_without_length,
            body: template.body,
        })
    }

    /// The task's kept-alive connection if the server has not closed it, else a new one.
    pub(crate) async fn reuse(
        &self,
        kept: Option<Connection>,
    ) -> Result<Connection, ExchangeError> {
        if let Some(mut c) = kept {
            if !c.is_closed() {
                return Ok(c);
            }
        }
        self.connect().await
    }

    pub(crate) async fn connect(&self) -> Result<Connection, ExchangeError> {
        let stream = TcpStream::connect(self.target.addr)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::ConnectionRefused => ExchangeError::Refused,
                std::io::ErrorKind::TimedOut => ExchangeError::ConnectTimedOut,
                _ => ExchangeError::Connect(e),
            })?;
        let _ = stream.set_nodelay(true);
        Ok(Connection {
            stream,
            buf: BytesMut::with_capacity(8192),
            last_used: Instant::now(),
        })
    }

    /// Send one request on `conn` with extra `headers` (name, value) and, when given, its own
    /// `body` (instead of the template's), handing every piece of the answer's (de-chunked)
    /// body to `sink` as soon as it is read — so a streamed answer can be timed as it arrives.
    /// After an error the connection is unusable; `Ok((answer, false))` means the server will
    /// close it.
    pub(crate) async fn exchange(
        &self,
        conn: &mut Connection,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        sink: impl FnMut(&[u8]),
    ) -> Result<(Answer, bool), ExchangeError> {
        let (head, body, own_body) = match body {
            Some(b) => (&self.head_without_length, b, true),
            None => (&self.head, &self.body[..], false),
        };
        let mut request = Vec::with_capacity(head.len() + body.len() + 64);
        request.extend_from_slice(head);
        for (name, value) in headers {
            for part in [name, ": ", value, "\r\n"] {
                request.extend_from_slice(part.as_bytes());
            }
        }
        if own_body {
            request.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        request.extend_from_slice(b"\r\n");
        request.extend_from_slice(body);
        self.round_trip(conn, &request, self.is_head, sink).await
    }

    /// `GET path` (on the target's host) on `conn`, its answer's body handed to `sink`: an async
    /// API's result is polled this way.
    pub(crate) async fn get(
        &self,
        conn: &mut Connection,
        path: &str,
        sink: impl FnMut(&[u8]),
    ) -> Result<(Answer, bool), ExchangeError> {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n",
            self.target.authority
        );
        self.round_trip(conn, request.as_bytes(), false, sink).await
    }

    /// Write `request` whole and read its answer.
    async fn round_trip(
        &self,
        conn: &mut Connection,
        request: &[u8],
        is_head: bool,
        mut sink: impl FnMut(&[u8]),
    ) -> Result<(Answer, bool), ExchangeError> {
        conn.buf.clear();
        conn.stream
            .write_all(request)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => {
                    ExchangeError::Reset
                }
                _ => ExchangeError::Write(e),
            })?;
        let (answer, head_len, body) = loop {
            if !conn.buf.is_empty() {
                let mut headers = [httparse::EMPTY_HEADER; 64];
                let mut response = httparse::Response::new(&mut headers);
                match response.parse(&conn.buf) {
                    Ok(httparse::Status::Complete(n)) => {
                        let status = response.code.unwrap_or(0);
                        let mut body = BodyLength::UntilClose;
                        let mut service_ms = None;
                        let mut queue_wait_ms = None;
                        let mut keep_alive = response.version == Some(1);
                        for h in response.headers.iter() {
                            let value = std::str::from_utf8(h.value).unwrap_or("").trim();
                            if h.name.eq_ignore_ascii_case("content-length") {
                                body = BodyLength::Exactly(value.parse().map_err(|_| {
                                    ExchangeError::BadContentLength(value.to_string())
                                })?);
                            } else if h.name.eq_ignore_ascii_case("transfer-encoding")
                                && value.to_ascii_lowercase().ends_with("chunked")
                            {
                                body = BodyLength::Chunked;
                            } else if h.name.eq_ignore_ascii_case(SERVICE_TIME_HEADER) {
                                service_ms = value.parse().ok();
                            } else if h.name.eq_ignore_ascii_case(QUEUE_WAIT_HEADER) {
                                queue_wait_ms = value.parse().ok();
                            } else if h.name.eq_ignore_ascii_case("connection") {
                                keep_alive = !value.eq_ignore_ascii_case("close");
                            }
                        }
                        if is_head || status < 200 || status == 204 || status == 304 {
                            body = BodyLength::Exactly(0);
                        }
                        if matches!(body, BodyLength::UntilClose) {
                            keep_alive = false;
                        }
                        break (
                            (
                                Answer {
                                    status,
                                    service_ms,
                                    queue_wait_ms,
                                },
                                keep_alive,
                            ),
                            n,
                            body,
                        );
                    }
                    Ok(httparse::Status::Partial) if conn.buf.len() < MAX_HEAD => {}
                    Ok(httparse::Status::Partial) => return Err(ExchangeError::HeadTooLarge),
                    Err(e) => return Err(ExchangeError::Malformed(e)),
                }
            }
            conn.fill().await?;
        };
        let _ = conn.buf.split_to(head_len);
        match body {
            BodyLength::Exactly(left) => pass(conn, left, &mut sink).await?,
            BodyLength::Chunked => read_chunked(conn, &mut sink).await?,
            BodyLength::UntilClose => loop {
                sink(&conn.buf);
                conn.buf.clear();
                match conn.stream.read_buf(&mut conn.buf).await {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => return Err(ExchangeError::Read(e)),
                }
            },
        }
        conn.last_used = Instant::now();
        Ok(answer)
    }
}

/// The next `left` bytes of the body go to `sink` as they are read.
async fn pass(
    conn: &mut Connection,
    mut left: usize,
    sink: &mut impl FnMut(&[u8]),
) -> Result<(), ExchangeError> {
    while left > 0 {
        if conn.buf.is_empty() {
            conn.fill().await?;
        }
        let n = left.min(conn.buf.len());
        sink(&conn.buf[..n]);
        let _ = conn.buf.split_to(n);
        left -= n;
    }
    Ok(())
}

/// A chunked body: each chunk's data goes to `sink` as it is read (a chunk split over several
/// reads arrives in pieces), then the last chunk and its trailers are consumed.
async fn read_chunked(
    conn: &mut Connection,
    sink: &mut impl FnMut(&[u8]),
) -> Result<(), ExchangeError> {
    loop {
        match httparse::parse_chunk_size(&conn.buf) {
            Ok(httparse::Status::Complete((line, 0))) => {
                // The last chunk, then optional trailers up to an empty line.
                let _ = conn.buf.split_to(line);
                while !conn.buf.starts_with(b"\r\n")
                    && !conn.buf.windows(4).any(|w| w == b"\r\n\r\n")
                {
                    conn.fill().await?;
                }
                return Ok(());
            }
            Ok(httparse::Status::Complete((line, size))) => {
                let left = usize::try_from(size).map_err(|_| ExchangeError::ChunkTooLarge)?;
                let _ = conn.buf.split_to(line);
                pass(conn, left, sink).await?;
                while conn.buf.len() < 2 {
                    conn.fill().await?;
                }
                if &conn.buf[..2] != b"\r\n" {
                    return Err(ExchangeError::MalformedChunk);
                }
                let _ = conn.buf.split_to(2);
            }
            Ok(httparse::Status::Partial) => conn.fill().await?,
            Err(_) => return Err(ExchangeError::MalformedChunk),
        }
    }
}

enum BodyLength {
    Exactly(usize),
    Chunked,
    UntilClose,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn urls_are_checked() {
        let t = Target::resolve("http://127.0.0.1:9/predict?x=1")
            .await
            .unwrap();
        assert_eq!(t.addr().port(), 9);
        assert_eq!(t.path, "/predict?x=1");
        for (url, expect) in [
            ("https://127.0.0.1/", "https is not supported"),
            ("ftp://127.0.0.1/", "unsupported scheme"),
            ("127.0.0.1:80", "absolute URL"),
            ("/just/a/path", "absolute URL"),
            ("http://exa mple/", "invalid"),
        ] {
            let e = Target::resolve(url).await.unwrap_err().to_string();
            assert!(e.contains(expect), "{url}: {e}");
        }
    }
}
