//! HTTP/1.1 to one target over a pool of kept-alive connections: a connection is opened only
//! when no idle one exists, so the number of connections follows the real concurrency.

use std::net::SocketAddr;
use std::sync::Mutex;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::replica::SERVICE_TIME_HEADER;
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
            .map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))?;
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

    /// The resolved address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
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
}

pub(crate) struct Pool {
    target: Target,
    template: RequestTemplate,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

impl Pool {
    pub(crate) fn new(target: Target, template: RequestTemplate) -> Self {
        Self {
            target,
            template,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn take_idle(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(sender) = idle.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let stream = TcpStream::connect(self.target.addr)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                std::io::ErrorKind::TimedOut => "connect timed out".to_string(),
                _ => format!("connect: {e}"),
            })?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(connection);
        Ok(sender)
    }

    /// Send one request (with a service time to ask for, if any) and read the whole answer.
    pub(crate) async fn send(&self, service_ms: Option<f64>) -> Result<Answer, String> {
        let mut sender = match self.take_idle() {
            Some(sender) => sender,
            None => self.connect().await?,
        };
        let t = &self.template;
        let mut request = Request::builder()
            .method(t.method.clone())
            .uri(self.target.path.as_str())
            .header(HOST, self.target.authority.as_str())
            .header(CONTENT_TYPE, t.content_type.clone());
        for (name, value) in &t.headers {
            request = request.header(name, value);
        }
        if let Some(ms) = service_ms {
            request = request.header(SERVICE_TIME_HEADER, format!("{ms:.3}"));
        }
        let request = request
            .body(Full::new(t.body.clone()))
            .map_err(|e| format!("request: {e}"))?;
        sender
            .ready()
            .await
            .map_err(|e| format!("connection: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("http: {e}"))?;
        let status = response.status().as_u16();
        let service_ms = response
            .headers()
            .get(SERVICE_TIME_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<f64>().ok());
        response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading body: {e}"))?;
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(sender);
        Ok(Answer { status, service_ms })
    }
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
