//! `herald verify`: check a saved webhook request against a secret, as a receiver would, and say
//! which check failed.
//!
//! The checking itself is `herald-verify`'s; this module only reads the saved request, turns
//! flags into a [`Scheme`], and reports. Exit codes: 0 valid, 1 invalid (the verdict names the
//! failed check), 2 when the request cannot be read or the flags do not make sense.

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use herald_verify::{Encoding, Scheme, Verifier};

const FORMAT_HELP: &str = "\
The saved request is a file (or `-` for standard input) holding HTTP headers, one `Name: value` \
per line, then a blank line, then the body exactly as received. An optional first line such as \
`POST /hook HTTP/1.1` is skipped. Lines may end in LF or CRLF. Every byte after the blank line is \
the body, so an editor that adds a final newline changes it; save bodies with `curl -o` or your \
receiver's raw-body log. Example:

    POST /hook HTTP/1.1
    webhook-id: dlv_01J...
    webhook-timestamp: 1714557243
    webhook-signature: v1,K5oZ...=

    {\"type\":\"file.uploaded\",\"timestamp\":\"...\",\"data\":{...}}

Prints `valid` and exits 0, or prints `invalid: <the check that failed>` and exits 1. Exits 2 \
when the file cannot be read or the flags do not fit together.";

/// Checks a saved webhook request's signature.
#[derive(Debug, Args)]
#[command(after_long_help = FORMAT_HELP)]
pub struct VerifyArgs {
    /// The saved request: headers, a blank line, the body (`-` reads standard input).
    pub request: PathBuf,

    /// The signing scheme, or the preset that names one.
    #[arg(long, value_enum)]
    pub scheme: SchemeArg,

    /// The secret as Herald shows it: the webhook's `whsec_…` secret, or for `cloudshare` the
    /// account-level secret. The environment variable keeps it out of the process list.
    #[arg(long, env = "HERALD_VERIFY_SECRET", hide_env_values = true)]
    pub secret: String,

    /// The header holding the signature (hmac-sha256, required) or the secret (secret-header,
    /// default X-Webhook-Secret).
    #[arg(long)]
    pub header: Option<String>,

    /// How the HMAC digest is written (hmac-sha256 only).
    #[arg(long, value_enum)]
    pub encoding: Option<EncodingArg>,

    /// Text before the digest, such as `sha256=` (hmac-sha256 only).
    #[arg(long)]
    pub prefix: Option<String>,

    /// Standard Webhooks: how far, in seconds, the timestamp may be from now.
    #[arg(long, default_value_t = Scheme::DEFAULT_TOLERANCE_SECONDS)]
    pub tolerance: u64,

    /// JWT: seconds of clock skew forgiven on `exp`, `iat` and `nbf`.
    #[arg(long, default_value_t = 0)]
    pub leeway: u64,

    /// Check as if it were this time (unix seconds), e.g. when the request was saved.
    #[arg(long)]
    pub now: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SchemeArg {
    /// Standard Webhooks headers (the `standard` preset).
    #[value(alias = "standard")]
    StandardWebhooks,
    /// HMAC-SHA256 of the body in --header, with --encoding and --prefix.
    HmacSha256,
    /// The secret verbatim in --header (the `event-data` preset uses X-Webhook-Secret).
    #[value(alias = "event-data")]
    SecretHeader,
    /// `Authorization: Bearer <JWT HS256>`; a non-empty body must match its claims (the
    /// `connect` preset).
    #[value(alias = "connect")]
    JwtHs256,
    /// `X-Hub-Signature-256: sha256=<hex>` (the `github` preset).
    Github,
    /// `x-cloudshare-signature: <base64>` with the account-level secret (the `cloudshare` preset).
    Cloudshare,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EncodingArg {
    Base64,
    Hex,
}

/// The outcome, for `main` to print and exit with.
#[derive(Debug)]
pub struct Report {
    pub exit_code: i32,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
}

pub fn run(args: &VerifyArgs) -> Report {
    let usage = |message: String| Report {
        exit_code: 2,
        stdout: None,
        stderr: Some(format!("herald verify: {message}")),
    };
    let scheme = match scheme(args) {
        Ok(s) => s,
        Err(message) => return usage(message),
    };
    let bytes = match read_request(&args.request) {
        Ok(b) => b,
        Err(message) => return usage(message),
    };
    let request = match SavedRequest::parse(&bytes) {
        Ok(r) => r,
        Err(message) => {
            return usage(format!(
                "{} is not a saved request: {message}",
                args.request.display()
            ));
        }
    };
    let verifier = Verifier::new(scheme, args.secret.clone());
    let verdict = match args.now {
        Some(now) => verifier.verify_at(&request.headers, &request.body, now),
        None => verifier.verify(&request.headers, &request.body),
    };
    match verdict {
        Ok(_) => Report {
            exit_code: 0,
            stdout: Some("valid".into()),
            stderr: None,
        },
        Err(failed) => Report {
            exit_code: 1,
            stdout: Some(format!("invalid: {failed}")),
            stderr: None,
        },
    }
}

fn scheme(args: &VerifyArgs) -> Result<Scheme, String> {
    let hmac_only = |flag: &str| format!("{flag} applies only to --scheme hmac-sha256");
    if args.scheme != SchemeArg::HmacSha256 {
        if args.encoding.is_some() {
            return Err(hmac_only("--encoding"));
        }
        if args.prefix.is_some() {
            return Err(hmac_only("--prefix"));
        }
        if args.header.is_some() && args.scheme != SchemeArg::SecretHeader {
            return Err(
                "--header applies only to --scheme hmac-sha256 and secret-header".to_owned(),
            );
        }
    }
    Ok(match args.scheme {
        SchemeArg::StandardWebhooks => Scheme::StandardWebhooks {
            tolerance_seconds: args.tolerance,
        },
        SchemeArg::HmacSha256 => Scheme::HmacSha256 {
            header: args
                .header
                .clone()
                .ok_or("--scheme hmac-sha256 needs --header")?,
            encoding: match args
                .encoding
                .ok_or("--scheme hmac-sha256 needs --encoding")?
            {
                EncodingArg::Base64 => Encoding::Base64,
                EncodingArg::Hex => Encoding::Hex,
            },
            prefix: args.prefix.clone().unwrap_or_default(),
        },
        SchemeArg::SecretHeader => Scheme::SecretHeader {
            header: args
                .header
                .clone()
                .unwrap_or_else(|| "X-Webhook-Secret".into()),
        },
        SchemeArg::JwtHs256 => Scheme::JwtHs256 {
            leeway_seconds: args.leeway,
            check_body: true,
        },
        SchemeArg::Github => Scheme::github(),
        SchemeArg::Cloudshare => Scheme::cloudshare(),
    })
}

fn read_request(path: &PathBuf) -> Result<Vec<u8>, String> {
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        Ok(bytes)
    } else {
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    }
}

/// A request as saved: its headers in order, and its body byte for byte.
#[derive(Debug, PartialEq, Eq)]
struct SavedRequest {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl SavedRequest {
    fn parse(bytes: &[u8]) -> Result<Self, String> {
        let (head, body) = split_head(bytes);
        let head = std::str::from_utf8(head).map_err(|_| "the headers are not UTF-8")?;
        let mut headers = Vec::new();
        for (i, line) in head.lines().enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            match line.split_once(':') {
                Some((name, value)) if is_token(name) => {
                    headers.push((name.to_owned(), value.trim().to_owned()));
                }
                // The request line (`POST /hook HTTP/1.1`): its method is followed by a space,
                // which no header name contains.
                _ if i == 0 && line.contains(' ') => {}
                _ => return Err(format!("line {} is not `Name: value`: {line:?}", i + 1)),
            }
        }
        Ok(Self {
            headers,
            body: body.to_vec(),
        })
    }
}

/// Splits at the first blank line; with none, the whole file is headers and the body is empty.
fn split_head(bytes: &[u8]) -> (&[u8], &[u8]) {
    let mut line_start = 0;
    for (i, b) in bytes.iter().enumerate() {
        if *b != b'\n' {
            continue;
        }
        let line = &bytes[line_start..i];
        if line.is_empty() || line == b"\r" {
            return (&bytes[..line_start], &bytes[i + 1..]);
        }
        line_start = i + 1;
    }
    (bytes, &[])
}

fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(h: &[(&str, &str)]) -> Vec<(String, String)> {
        h.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_saved_request_splits_at_the_first_blank_line_and_keeps_the_body_exact() {
        let r = SavedRequest::parse(
            b"POST /hook HTTP/1.1\r\nwebhook-id: dlv_1\r\nX-A:  spaced \r\n\r\n{\"a\":\n\n1}\n",
        )
        .unwrap();
        assert_eq!(
            r.headers,
            pairs(&[("webhook-id", "dlv_1"), ("X-A", "spaced")])
        );
        assert_eq!(r.body, b"{\"a\":\n\n1}\n");

        let r = SavedRequest::parse(b"X-Webhook-Secret: s\n\n").unwrap();
        assert_eq!(r.headers, pairs(&[("X-Webhook-Secret", "s")]));
        assert!(r.body.is_empty());

        let r = SavedRequest::parse(b"Authorization: Bearer a.b.c\n").unwrap();
        assert_eq!(r.headers, pairs(&[("Authorization", "Bearer a.b.c")]));
        assert!(r.body.is_empty());
    }

    #[test]
    fn a_line_that_is_not_a_header_is_named() {
        let err = SavedRequest::parse(b"webhook-id: 1\n{\"a\": 1}\n").unwrap_err();
        assert!(err.starts_with("line 2 is not `Name: value`"), "{err}");
        assert!(
            SavedRequest::parse(b"bad name: x\n\n").is_ok(),
            "a request line"
        );
        assert!(SavedRequest::parse(b"a: 1\nbad name: x\n\n").is_err());
    }
}
