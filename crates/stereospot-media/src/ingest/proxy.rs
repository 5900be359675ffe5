//! The filtering HTTP proxy every yt-dlp run goes through.
//!
//! yt-dlp follows redirects, reads manifests that name other hosts, and fetches fragments from
//! CDNs: checking the URL the user gave is not enough. So each download starts its own proxy on
//! `127.0.0.1:0` and yt-dlp gets `--proxy` (and the proxy environment variables); the proxy
//! checks *every* connection:
//!
//! - `CONNECT host:port` (https): the host is resolved here, every resolved address is checked
//!   against the [`AddressPolicy`], and the tunnel is connected to an address that was checked
//!   (never resolved again by anyone: no DNS-rebinding window). Refused with `403`.
//! - `GET http://host/...` (absolute form, plain http): the same check, then the request is sent
//!   in origin form with `Host` from the URL, `Connection: close`, and the `Proxy-*` headers
//!   removed; the response's connection headers are rewritten to `Connection: close` too, so one
//!   client connection carries exactly one request to the one host that was checked.
//! - Anything else (origin-form requests, other schemes, bad syntax, oversized heads) gets `400`.
//!
//! A host with any forbidden address is refused whole. The proxy also counts the bytes it
//! relays towards the client and cuts every connection once a budget is spent (a download
//! cannot be made larger than the size limit by hiding its size), and records what it refused,
//! so the caller can explain a failed download ("a redirect led to 169.254.169.254").

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

use super::address::{AddressPolicy, Forbidden};

/// Longest request or response head accepted.
const MAX_HEAD: usize = 32 * 1024;
const RELAY_BUFFER: usize = 64 * 1024;

/// How the proxy behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyOptions {
    /// Which addresses may be reached.
    pub policy: AddressPolicy,
    /// Bytes relayed towards the client, over all connections, after which every connection is
    /// cut (`None`: unlimited).
    pub byte_budget: Option<u64>,
    /// Limit on reading a request head, resolving a host and connecting.
    pub connect_timeout: Duration,
    /// A relayed connection with no traffic either way for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        Self {
            policy: AddressPolicy::strict(),
            byte_budget: None,
            connect_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(120),
        }
    }
}

/// A connection the proxy refused or could not make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The target resolved to an address the policy forbids.
    Forbidden {
        /// The host as requested.
        host: String,
        /// The forbidden address.
        address: std::net::IpAddr,
        /// Why.
        reason: Forbidden,
    },
    /// The host name did not resolve.
    Unresolvable {
        /// The host as requested.
        host: String,
    },
}

/// What the proxy saw; shared with the caller.
#[derive(Debug, Default)]
pub struct ProxyStats {
    refusals: Mutex<Vec<Refusal>>,
    bytes_down: AtomicU64,
    connections: AtomicU64,
    budget_exceeded: AtomicBool,
}

impl ProxyStats {
    /// Everything refused, in order.
    pub fn refusals(&self) -> Vec<Refusal> {
        self.refusals.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Bytes relayed towards the client so far.
    pub fn bytes_down(&self) -> u64 {
        self.bytes_down.load(Ordering::Relaxed)
    }

    /// Connections made to upstream hosts.
    pub fn upstream_connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Whether the byte budget ran out (connections were cut).
    pub fn budget_exceeded(&self) -> bool {
        self.budget_exceeded.load(Ordering::Relaxed)
    }

    fn refuse(&self, r: Refusal) {
        if let Ok(mut v) = self.refusals.lock() {
            v.push(r);
        }
    }
}

/// A running proxy; stops (and cuts its connections) when dropped.
#[derive(Debug)]
pub struct FilterProxy {
    addr: SocketAddr,
    stats: Arc<ProxyStats>,
    task: JoinHandle<()>,
}

impl FilterProxy {
    /// Starts a proxy on `127.0.0.1:0`.
    pub async fn start(options: ProxyOptions) -> std::io::Result<Self> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(ProxyStats::default());
        let shared = Arc::new(Shared {
            options,
            stats: stats.clone(),
        });
        // The tasks log in the caller's span (the worker's carries `job_id`).
        let task = tokio::spawn(accept_loop(listener, shared).in_current_span());
        tracing::debug!(%addr, "ingest proxy listening");
        Ok(Self { addr, stats, task })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:port`, for `--proxy`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stats(&self) -> &Arc<ProxyStats> {
        &self.stats
    }
}

impl Drop for FilterProxy {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection task.
        self.task.abort();
    }
}

#[derive(Debug)]
struct Shared {
    options: ProxyOptions,
    stats: Arc<ProxyStats>,
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let shared = shared.clone();
                    connections.spawn(
                        async move {
                            if let Err(e) = handle(stream, &shared).await {
                                tracing::debug!(%peer, error = %e, "ingest proxy connection ended");
                            }
                        }
                        .in_current_span(),
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %e, "ingest proxy cannot accept");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// A request line and headers.
#[derive(Debug)]
struct Head {
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
}

/// Why a connection could not be served, with the status sent back.
#[derive(Debug, thiserror::Error)]
enum ProxyError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("refused: {0}")]
    Forbidden(String),
    #[error("bad gateway: {0}")]
    BadGateway(String),
    #[error("gateway timeout: {0}")]
    Timeout(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("byte budget spent")]
    Budget,
}

impl ProxyError {
    fn status(&self) -> Option<&'static str> {
        match self {
            ProxyError::BadRequest(_) => Some("400 Bad Request"),
            ProxyError::Forbidden(_) => Some("403 Forbidden"),
            ProxyError::BadGateway(_) => Some("502 Bad Gateway"),
            ProxyError::Timeout(_) => Some("504 Gateway Timeout"),
            ProxyError::Io(_) | ProxyError::Budget => None,
        }
    }
}

/// A request that passed the checks, with its upstream connection.
struct Opened {
    head: Head,
    /// Bytes the client sent after the head.
    rest: Vec<u8>,
    upstream: TcpStream,
    host: String,
    port: u16,
}

async fn open(client: &mut TcpStream, shared: &Shared) -> Result<Opened, ProxyError> {
    let (raw, rest) = tokio::time::timeout(shared.options.connect_timeout, read_head(client))
        .await
        .map_err(|_| ProxyError::Timeout("reading the request".into()))??;
    let head = parse_request_head(&raw)?;
    let (host, port) = if head.method.eq_ignore_ascii_case("CONNECT") {
        parse_authority(&head.target)?
    } else {
        parse_absolute_http(&head.target)?
    };
    let upstream = connect_checked(&host, port, shared).await?;
    Ok(Opened {
        head,
        rest,
        upstream,
        host,
        port,
    })
}

async fn handle(mut client: TcpStream, shared: &Shared) -> Result<(), ProxyError> {
    let Opened {
        head,
        rest,
        mut upstream,
        host,
        port,
    } = match open(&mut client, shared).await {
        Ok(v) => v,
        Err(e) => {
            if let Some(status) = e.status() {
                tracing::debug!(error = %e, "ingest proxy refused a request");
                let body = format!("stereospot ingest proxy: {e}\n");
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = client.write_all(response.as_bytes()).await;
                let _ = client.shutdown().await;
                // Read what the client still sends before closing: closing a socket with unread
                // input resets the connection, which can destroy the response in flight.
                let mut sink = [0u8; 4096];
                let mut left = 64 * 1024usize;
                while left > 0 {
                    match tokio::time::timeout(Duration::from_secs(1), client.read(&mut sink)).await
                    {
                        Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
                        _ => break,
                    }
                }
            }
            return Err(e);
        }
    };
    let tunnel = head.method.eq_ignore_ascii_case("CONNECT");
    if tunnel {
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await?;
        if !rest.is_empty() {
            upstream.write_all(&rest).await?;
        }
        return relay(client, upstream, shared).await;
    }
    let request = origin_form_request(&head, &host, port)?;
    upstream.write_all(&request).await?;
    if !rest.is_empty() {
        upstream.write_all(&rest).await?;
    }
    // The response head gets its connection headers rewritten; the body is relayed as is.
    let (response_head, body_start) =
        tokio::time::timeout(shared.options.idle_timeout, read_head(&mut upstream))
            .await
            .map_err(|_| ProxyError::Timeout("waiting for the response".into()))??;
    let response_head = close_response_head(&response_head)?;
    count_down(shared, (response_head.len() + body_start.len()) as u64)?;
    client.write_all(&response_head).await?;
    client.write_all(&body_start).await?;
    relay(client, upstream, shared).await
}

/// Reads up to the blank line that ends a head; returns the head and whatever came after it.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Result<(Vec<u8>, Vec<u8>), ProxyError> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(ProxyError::BadRequest(
                "connection closed inside the head".into(),
            ));
        }
        let searched_from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = find(&buf[searched_from..], b"\r\n\r\n") {
            let end = searched_from + pos + 4;
            let rest = buf.split_off(end);
            return Ok((buf, rest));
        }
        if buf.len() > MAX_HEAD {
            return Err(ProxyError::BadRequest(format!(
                "head longer than {MAX_HEAD} bytes"
            )));
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn parse_request_head(raw: &[u8]) -> Result<Head, ProxyError> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| ProxyError::BadRequest("the head is not UTF-8".into()))?;
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ProxyError::BadRequest("malformed request line".into()));
    };
    if !is_token(method) {
        return Err(ProxyError::BadRequest("malformed method".into()));
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(ProxyError::BadRequest("unsupported HTTP version".into()));
    }
    if target.is_empty() || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(ProxyError::BadRequest("malformed target".into()));
    }
    let headers = parse_headers(lines)?;
    Ok(Head {
        method: method.to_string(),
        target: target.to_string(),
        version: version.to_string(),
        headers,
    })
}

fn parse_headers<'a>(
    lines: impl Iterator<Item = &'a str>,
) -> Result<Vec<(String, String)>, ProxyError> {
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| ProxyError::BadRequest("malformed header line".into()))?;
        if !is_token(name) {
            return Err(ProxyError::BadRequest("malformed header name".into()));
        }
        let value = value.trim_matches([' ', '\t']);
        if value.bytes().any(|b| (b < b' ' && b != b'\t') || b == 0x7f) {
            return Err(ProxyError::BadRequest(
                "control character in a header".into(),
            ));
        }
        headers.push((name.to_string(), value.to_string()));
    }
    Ok(headers)
}

/// `host:port` of a CONNECT request (the port is required).
fn parse_authority(target: &str) -> Result<(String, u16), ProxyError> {
    let bad = || ProxyError::BadRequest(format!("malformed CONNECT target {target:?}"));
    if target.contains(['/', '@', '?', '#', '\\']) {
        return Err(bad());
    }
    let (host, port) = target.rsplit_once(':').ok_or_else(bad)?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let port: u16 = port.parse().map_err(|_| bad())?;
    if port == 0 {
        return Err(bad());
    }
    // The URL parser normalises the host (IDNA, IPv4 in decimal/octal/hex, IPv6 brackets).
    let url = url::Url::parse(&format!("http://{host}:{port}/")).map_err(|_| bad())?;
    let host = url.host_str().ok_or_else(bad)?.to_string();
    Ok((host, port))
}

/// Host and port of an absolute-form `http://` target. Other schemes and origin-form targets
/// are refused: this is a forward proxy for plain http only (https goes through CONNECT).
fn parse_absolute_http(target: &str) -> Result<(String, u16), ProxyError> {
    if !target
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
    {
        return Err(ProxyError::BadRequest(
            "only absolute http:// targets (or CONNECT) are proxied".into(),
        ));
    }
    let url = url::Url::parse(target)
        .map_err(|e| ProxyError::BadRequest(format!("malformed URL: {e}")))?;
    if url.scheme() != "http" || !url.username().is_empty() || url.password().is_some() {
        return Err(ProxyError::BadRequest(
            "URLs with credentials are not proxied".into(),
        ));
    }
    let host = url
        .host_str()
        .ok_or_else(|| ProxyError::BadRequest("URL without a host".into()))?
        .to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    Ok((host, port))
}

/// Why a host may not be connected to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResolveError {
    Refused(Refusal),
    Timeout,
}

/// Resolves `host` (a name or an IP literal, IPv6 with or without brackets) and checks every
/// address: all of them must be allowed.
pub(crate) async fn resolve_checked(
    host: &str,
    port: u16,
    policy: &AddressPolicy,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, ResolveError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => {
            match tokio::time::timeout(timeout, tokio::net::lookup_host((bare, port))).await {
                Ok(Ok(it)) => it.collect(),
                Ok(Err(_)) => Vec::new(),
                Err(_) => return Err(ResolveError::Timeout),
            }
        }
    };
    if addrs.is_empty() {
        return Err(ResolveError::Refused(Refusal::Unresolvable {
            host: host.to_string(),
        }));
    }
    for addr in &addrs {
        if let Err(reason) = policy.check(*addr) {
            return Err(ResolveError::Refused(Refusal::Forbidden {
                host: host.to_string(),
                address: addr.ip(),
                reason,
            }));
        }
    }
    Ok(addrs)
}

/// Resolves `host`, refuses it if any address is forbidden, and connects to a checked address.
async fn connect_checked(host: &str, port: u16, shared: &Shared) -> Result<TcpStream, ProxyError> {
    let opts = &shared.options;
    let addrs = match resolve_checked(host, port, &opts.policy, opts.connect_timeout).await {
        Ok(addrs) => addrs,
        Err(ResolveError::Timeout) => {
            return Err(ProxyError::Timeout(format!("resolving {host}")));
        }
        Err(ResolveError::Refused(refusal)) => {
            let err = match &refusal {
                Refusal::Forbidden {
                    address, reason, ..
                } => {
                    tracing::warn!(host, %address, %reason, "ingest proxy refused a connection");
                    ProxyError::Forbidden(format!("{host} is a {reason} address ({address})"))
                }
                Refusal::Unresolvable { .. } => {
                    ProxyError::BadGateway(format!("{host} does not resolve"))
                }
            };
            shared.stats.refuse(refusal);
            return Err(err);
        }
    };
    let mut last = None;
    for addr in addrs {
        match tokio::time::timeout(opts.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                shared.stats.connections.fetch_add(1, Ordering::Relaxed);
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => last = Some(format!("{addr}: {e}")),
            Err(_) => last = Some(format!("{addr}: timed out")),
        }
    }
    Err(ProxyError::BadGateway(format!(
        "cannot connect to {host}: {}",
        last.unwrap_or_default()
    )))
}

/// Hop-by-hop and proxy headers that must not be forwarded.
fn is_hop_header(name: &str, listed: &[String]) -> bool {
    const HOP: &[&str] = &[
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "proxy-authenticate",
        "te",
        "trailer",
        "upgrade",
    ];
    let lower = name.to_ascii_lowercase();
    HOP.contains(&lower.as_str()) || listed.contains(&lower)
}

fn connection_listed(headers: &[(String, String)]) -> Vec<String> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| v.split(',').map(|t| t.trim().to_ascii_lowercase()))
        .collect()
}

/// The request in origin form for the upstream server.
fn origin_form_request(head: &Head, host: &str, port: u16) -> Result<Vec<u8>, ProxyError> {
    let url = url::Url::parse(&head.target)
        .map_err(|e| ProxyError::BadRequest(format!("malformed URL: {e}")))?;
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    let authority = if port == 80 {
        host.to_string()
    } else {
        format!("{host}:{port}")
    };
    let listed = connection_listed(&head.headers);
    let mut out = format!("{} {path} {}\r\n", head.method, head.version);
    out.push_str(&format!("Host: {authority}\r\n"));
    for (name, value) in &head.headers {
        if name.eq_ignore_ascii_case("host") || is_hop_header(name, &listed) {
            continue;
        }
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("Connection: close\r\n\r\n");
    Ok(out.into_bytes())
}

/// A response head with its connection headers replaced by `Connection: close`.
fn close_response_head(raw: &[u8]) -> Result<Vec<u8>, ProxyError> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| ProxyError::BadGateway("response head is not UTF-8".into()))?;
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("HTTP/1.") {
        return Err(ProxyError::BadGateway("malformed response".into()));
    }
    let headers =
        parse_headers(lines).map_err(|_| ProxyError::BadGateway("malformed response".into()))?;
    let listed = connection_listed(&headers);
    let mut out = format!("{status}\r\n");
    for (name, value) in &headers {
        if is_hop_header(name, &listed) {
            continue;
        }
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("Connection: close\r\n\r\n");
    Ok(out.into_bytes())
}

fn count_down(shared: &Shared, n: u64) -> Result<(), ProxyError> {
    let total = shared.stats.bytes_down.fetch_add(n, Ordering::Relaxed) + n;
    if let Some(budget) = shared.options.byte_budget
        && total > budget
    {
        if !shared.stats.budget_exceeded.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                budget,
                "ingest proxy byte budget spent: cutting the download"
            );
        }
        return Err(ProxyError::Budget);
    }
    Ok(())
}

/// Copies both ways until both sides are done, counting the bytes towards the client.
async fn relay(client: TcpStream, upstream: TcpStream, shared: &Shared) -> Result<(), ProxyError> {
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = upstream.into_split();
    let idle = shared.options.idle_timeout;
    let up = copy(&mut cr, &mut uw, idle, None);
    let down = copy(&mut ur, &mut cw, idle, Some(shared));
    tokio::try_join!(up, down)?;
    Ok(())
}

async fn copy<R, W>(
    r: &mut R,
    w: &mut W,
    idle: Duration,
    count: Option<&Shared>,
) -> Result<(), ProxyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; RELAY_BUFFER];
    loop {
        let n = tokio::time::timeout(idle, r.read(&mut buf))
            .await
            .map_err(|_| ProxyError::Timeout("connection idle".into()))??;
        if n == 0 {
            let _ = w.shutdown().await;
            return Ok(());
        }
        if let Some(shared) = count {
            count_down(shared, n as u64)?;
        }
        w.write_all(&buf[..n]).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_heads_are_parsed_strictly() {
        let h = parse_request_head(
            b"GET http://a.example/x?y=1 HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\n\r\n",
        )
        .unwrap();
        assert_eq!(h.method, "GET");
        assert_eq!(h.headers.len(), 2);
        for bad in [
            &b"GET http://a/ HTTP/1.1 extra\r\n\r\n"[..],
            b"GET  http://a/ HTTP/1.1\r\n\r\n",
            b"GET http://a/ HTTP/2\r\n\r\n",
            b"G(T http://a/ HTTP/1.1\r\n\r\n",
            b"GET http://a/ HTTP/1.1\r\nNo colon here\r\n\r\n",
            b"GET http://a/ HTTP/1.1\r\nBad Name: x\r\n\r\n",
            b"GET http://a/ HTTP/1.1\r\nX: a\x01b\r\n\r\n",
            b"\xff\xfe HTTP/1.1\r\n\r\n",
        ] {
            assert!(
                parse_request_head(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn connect_targets_need_a_host_and_a_port() {
        assert_eq!(
            parse_authority("Example.COM:443").unwrap(),
            ("example.com".into(), 443)
        );
        assert_eq!(
            parse_authority("[::1]:8443").unwrap(),
            ("[::1]".into(), 8443)
        );
        // Numeric spellings are normalised; the check is on the address anyway.
        assert_eq!(
            parse_authority("2130706433:443").unwrap(),
            ("127.0.0.1".into(), 443)
        );
        for bad in [
            "example.com",
            "example.com:",
            "example.com:0",
            "example.com:99999",
            "user@example.com:443",
            "example.com:443/x",
            ":443",
        ] {
            assert!(parse_authority(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_absolute_http_targets_are_forwarded() {
        assert_eq!(
            parse_absolute_http("http://a.example/v.mp4").unwrap(),
            ("a.example".into(), 80)
        );
        assert_eq!(
            parse_absolute_http("HTTP://a.example:8080/").unwrap(),
            ("a.example".into(), 8080)
        );
        for bad in [
            "/v.mp4",
            "https://a.example/",
            "ftp://a.example/",
            "file:///etc/passwd",
            "http://user:pw@a.example/",
        ] {
            assert!(parse_absolute_http(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_requests_are_origin_form_with_connection_close() {
        let h = parse_request_head(
            b"GET http://a.example:8080/v.mp4?x=1 HTTP/1.1\r\nHost: evil.example\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: x\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nAccept: */*\r\n\r\n",
        )
        .unwrap();
        let out = String::from_utf8(origin_form_request(&h, "a.example", 8080).unwrap()).unwrap();
        assert_eq!(
            out,
            "GET /v.mp4?x=1 HTTP/1.1\r\nHost: a.example:8080\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        let resp = close_response_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(resp).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
        );
    }

    use std::sync::atomic::AtomicUsize;

    /// A local server that counts connections and answers each with `response`, recording the
    /// request heads it got.
    struct Server {
        addr: SocketAddr,
        accepted: Arc<AtomicUsize>,
        heads: Arc<Mutex<Vec<String>>>,
        _task: JoinHandle<()>,
    }

    async fn server(response: &'static [u8]) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (a, h) = (accepted.clone(), heads.clone());
        let task = tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                a.fetch_add(1, Ordering::SeqCst);
                let h = h.clone();
                tokio::spawn(async move {
                    if let Ok((head, _)) = read_head(&mut s).await {
                        h.lock()
                            .unwrap()
                            .push(String::from_utf8_lossy(&head).into_owned());
                        let _ = s.write_all(response).await;
                    }
                    let _ = s.shutdown().await;
                });
            }
        });
        Server {
            addr,
            accepted,
            heads,
            _task: task,
        }
    }

    impl Server {
        /// Connections so far, counted after a connection of our own has been accepted (the
        /// listener accepts in order, so every earlier connection is counted by then).
        async fn connections_besides_ours(&self) -> usize {
            let before = self.accepted.load(Ordering::SeqCst);
            let _probe = TcpStream::connect(self.addr).await.unwrap();
            while self.accepted.load(Ordering::SeqCst) == before {
                tokio::task::yield_now().await;
            }
            self.accepted.load(Ordering::SeqCst) - 1
        }
    }

    async fn exchange(proxy: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(proxy).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    fn loopback_allowed() -> ProxyOptions {
        ProxyOptions {
            policy: AddressPolicy {
                allow_loopback: true,
                ..AddressPolicy::default()
            },
            ..ProxyOptions::default()
        }
    }

    const OK: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello";

    #[tokio::test]
    async fn connect_to_private_and_metadata_addresses_is_refused_with_403() {
        let proxy = FilterProxy::start(ProxyOptions::default()).await.unwrap();
        for target in [
            "10.0.0.1:443",
            "169.254.169.254:80",
            "192.168.0.1:443",
            "172.16.5.4:443",
            "100.100.100.200:80",
            "[fd00:ec2::254]:80",
            "[fe80::1]:443",
            "[::ffff:169.254.169.254]:80",
            "0.0.0.0:443",
        ] {
            let r = exchange(
                proxy.addr(),
                format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes(),
            )
            .await;
            assert!(r.starts_with("HTTP/1.1 403 "), "{target}: {r}");
        }
        assert_eq!(proxy.stats().refusals().len(), 9);
        assert_eq!(proxy.stats().upstream_connections(), 0);
    }

    #[tokio::test]
    async fn no_open_relay_to_loopback_in_any_spelling() {
        let canary = server(OK).await;
        let proxy = FilterProxy::start(ProxyOptions::default()).await.unwrap();
        let port = canary.addr.port();
        for target in [
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("2130706433:{port}"),
            format!("0x7f.1:{port}"),
            format!("0177.0.0.1:{port}"),
            format!("[::1]:{port}"),
            format!("[::ffff:127.0.0.1]:{port}"),
            format!("0.0.0.0:{port}"),
        ] {
            let r = exchange(
                proxy.addr(),
                format!("CONNECT {target} HTTP/1.1\r\n\r\n").as_bytes(),
            )
            .await;
            assert!(r.starts_with("HTTP/1.1 403 "), "CONNECT {target}: {r}");
            let r = exchange(
                proxy.addr(),
                format!("GET http://{target}/secret HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
            )
            .await;
            assert!(r.starts_with("HTTP/1.1 403 "), "GET {target}: {r}");
        }
        assert_eq!(canary.connections_besides_ours().await, 0);
        assert_eq!(proxy.stats().upstream_connections(), 0);
        // The proxy itself is on loopback too: it may not be asked to call itself.
        let own = proxy.addr();
        let r = exchange(own, format!("CONNECT {own} HTTP/1.1\r\n\r\n").as_bytes()).await;
        assert!(r.starts_with("HTTP/1.1 403 "), "{r}");
    }

    #[tokio::test]
    async fn an_allowed_connect_is_relayed_both_ways() {
        let upstream = server(OK).await;
        let proxy = FilterProxy::start(loopback_allowed()).await.unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        s.write_all(format!("CONNECT {} HTTP/1.1\r\n\r\n", upstream.addr).as_bytes())
            .await
            .unwrap();
        let (head, rest) = read_head(&mut s).await.unwrap();
        assert_eq!(head, b"HTTP/1.1 200 Connection established\r\n\r\n");
        assert!(rest.is_empty());
        // Inside the tunnel the bytes are the client's, untouched.
        s.write_all(b"GET /inside HTTP/1.1\r\nHost: anything\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, OK);
        assert_eq!(
            upstream.heads.lock().unwrap()[0],
            "GET /inside HTTP/1.1\r\nHost: anything\r\n\r\n"
        );
        assert_eq!(proxy.stats().upstream_connections(), 1);
        assert_eq!(proxy.stats().bytes_down(), OK.len() as u64);
    }

    #[tokio::test]
    async fn an_absolute_uri_get_is_forwarded_in_origin_form() {
        let upstream = server(OK).await;
        // Only this one address is allowed; loopback in general is not.
        let proxy = FilterProxy::start(ProxyOptions {
            policy: AddressPolicy {
                allow_exact: vec![upstream.addr],
                ..AddressPolicy::default()
            },
            ..ProxyOptions::default()
        })
        .await
        .unwrap();
        let r = exchange(
            proxy.addr(),
            format!(
                "GET http://{}/v.mp4?a=1 HTTP/1.1\r\nHost: wrong\r\nProxy-Connection: keep-alive\r\nUser-Agent: t\r\n\r\n",
                upstream.addr
            )
            .as_bytes(),
        )
        .await;
        assert_eq!(
            r,
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
        );
        assert_eq!(
            upstream.heads.lock().unwrap()[0],
            format!(
                "GET /v.mp4?a=1 HTTP/1.1\r\nHost: {}\r\nUser-Agent: t\r\nConnection: close\r\n\r\n",
                upstream.addr
            )
        );
        // Another port on the same address stays refused.
        let other = server(OK).await;
        let r = exchange(
            proxy.addr(),
            format!("GET http://{}/ HTTP/1.1\r\n\r\n", other.addr).as_bytes(),
        )
        .await;
        assert!(r.starts_with("HTTP/1.1 403 "), "{r}");
        assert_eq!(other.connections_besides_ours().await, 0);
    }

    #[tokio::test]
    async fn malformed_requests_get_400() {
        let proxy = FilterProxy::start(loopback_allowed()).await.unwrap();
        for request in [
            &b"hello\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
            b"GET ftp://example.com/ HTTP/1.1\r\n\r\n",
            b"GET file:///etc/passwd HTTP/1.1\r\n\r\n",
            b"GET https://example.com/ HTTP/1.1\r\n\r\n",
            b"CONNECT example.com HTTP/1.1\r\n\r\n",
            b"CONNECT user@example.com:443 HTTP/1.1\r\n\r\n",
            b"GET http://a/ HTTP/9.9\r\n\r\n",
            b"GET http://a/ HTTP/1.1\r\nbroken header\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        ] {
            let r = exchange(proxy.addr(), request).await;
            assert!(
                r.starts_with("HTTP/1.1 400 "),
                "{:?}: {r}",
                String::from_utf8_lossy(request)
            );
        }
        // An endless head is cut off.
        let mut huge = b"GET http://a/ HTTP/1.1\r\n".to_vec();
        huge.extend(std::iter::repeat_n(b'a', MAX_HEAD + 10));
        let r = exchange(proxy.addr(), &huge).await;
        assert!(r.starts_with("HTTP/1.1 400 "), "{r}");
        assert_eq!(proxy.stats().upstream_connections(), 0);
    }

    #[tokio::test]
    async fn the_byte_budget_cuts_a_download() {
        static BIG: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
            let mut v = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n".to_vec();
            v.resize(v.len() + 1_000_000, b'x');
            v
        });
        let upstream = server(BIG.as_slice()).await;
        let proxy = FilterProxy::start(ProxyOptions {
            byte_budget: Some(100_000),
            ..loopback_allowed()
        })
        .await
        .unwrap();
        let r = exchange(
            proxy.addr(),
            format!("GET http://{}/big HTTP/1.1\r\n\r\n", upstream.addr).as_bytes(),
        )
        .await;
        assert!(r.len() < 200_000, "{} bytes got through", r.len());
        assert!(proxy.stats().budget_exceeded());
    }
}
