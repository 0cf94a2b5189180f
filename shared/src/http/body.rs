//! Request bodies read to a limit, with `Content-Encoding` undone: one rule for the JSON
//! extractor, records and telemetry ingestion.
//!
//! - `identity` (or no header), `gzip` (`x-gzip`) and `deflate` (zlib, as HTTP means it) are
//!   read; any other coding, or more than one, is refused with 415
//!   `unsupported_content_encoding` before a byte is read (OpenTelemetry Collectors send gzip
//!   by default; zstd and br are not read).
//! - The limit applies to the decoded bytes, and decoding stops at the first byte past it:
//!   a small body that inflates without end (a zip bomb) is 413 `payload_too_large` and costs
//!   the limit in memory, not what it would inflate to.
//! - A body that is not what its coding says is 400 `invalid_body`.

use std::io::Write as _;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header::CONTENT_ENCODING;
use actix_web::HttpRequest;
use futures_util::StreamExt as _;

use crate::error::ApiError;

/// Why a body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("request body is too large")]
    TooLarge,
    #[error("the request body could not be read")]
    Unreadable,
    #[error("unsupported Content-Encoding: send identity, gzip or deflate")]
    UnsupportedEncoding,
}

impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge => super::payload_too_large(),
            BodyError::Unreadable => {
                ApiError::bad_request("invalid_body", "the request body could not be read")
            }
            BodyError::UnsupportedEncoding => ApiError::new(
                actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_content_encoding",
                "send the body as identity, gzip or deflate",
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Identity,
    Gzip,
    Deflate,
}

/// The body's coding from its `Content-Encoding` header.
fn coding(req: &HttpRequest) -> Result<Coding, BodyError> {
    let mut values = req.headers().get_all(CONTENT_ENCODING);
    let Some(value) = values.next() else {
        return Ok(Coding::Identity);
    };
    if values.next().is_some() {
        return Err(BodyError::UnsupportedEncoding);
    }
    let value = value
        .to_str()
        .map_err(|_| BodyError::UnsupportedEncoding)?
        .trim()
        .to_ascii_lowercase();
    match value.as_str() {
        "" | "identity" => Ok(Coding::Identity),
        "gzip" | "x-gzip" => Ok(Coding::Gzip),
        "deflate" => Ok(Coding::Deflate),
        _ => Err(BodyError::UnsupportedEncoding),
    }
}

/// Checks the body's coding before anything is read (415 when it is not one we read).
pub fn check_coding(req: &HttpRequest) -> Result<(), BodyError> {
    coding(req).map(|_| ())
}

/// Decoded bytes, refusing to hold more than `limit`.
struct Bounded {
    bytes: Vec<u8>,
    limit: usize,
}

impl std::io::Write for Bounded {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + data.len() > self.limit {
            return Err(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                "over the limit",
            ));
        }
        self.bytes.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum Decoder {
    Identity(Bounded),
    Gzip(flate2::write::GzDecoder<Bounded>),
    Deflate(flate2::write::ZlibDecoder<Bounded>),
}

fn io_error(error: std::io::Error) -> BodyError {
    match error.kind() {
        std::io::ErrorKind::FileTooLarge => BodyError::TooLarge,
        _ => BodyError::Unreadable,
    }
}

impl Decoder {
    fn write(&mut self, chunk: &[u8]) -> Result<(), BodyError> {
        match self {
            Self::Identity(out) => out.write_all(chunk),
            Self::Gzip(decoder) => decoder.write_all(chunk),
            Self::Deflate(decoder) => decoder.write_all(chunk),
        }
        .map_err(io_error)
    }

    fn finish(self) -> Result<Vec<u8>, BodyError> {
        let out = match self {
            Self::Identity(out) => out,
            Self::Gzip(decoder) => decoder.finish().map_err(io_error)?,
            Self::Deflate(decoder) => decoder.finish().map_err(io_error)?,
        };
        Ok(out.bytes)
    }
}

/// The body's length as its `Content-Length` declares it (`None`: not declared, or not a
/// number).
pub fn declared_length(req: &HttpRequest) -> Option<u64> {
    req.headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
}

/// The most a body's buffer is given before its bytes arrive.
const PRESIZE_MAX: usize = 4 << 20;

/// The body of `req`, decoded, at most `limit` bytes once decoded.
pub async fn read(
    req: &HttpRequest,
    mut payload: Payload,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    // Room for what `Content-Length` announces (within the limit, and no more than
    // `PRESIZE_MAX` on a sender's word), so a large body is not copied again as it grows.
    let announced =
        declared_length(req).map_or(0, |length| usize::try_from(length).unwrap_or(usize::MAX));
    let out = Bounded {
        bytes: Vec::with_capacity(announced.min(limit).min(PRESIZE_MAX)),
        limit,
    };
    let mut decoder = match coding(req)? {
        Coding::Identity => Decoder::Identity(out),
        Coding::Gzip => Decoder::Gzip(flate2::write::GzDecoder::new(out)),
        Coding::Deflate => Decoder::Deflate(flate2::write::ZlibDecoder::new(out)),
    };
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| match error {
            // The node's body limit (`hygiene::limit_body`) cut a body of unknown length.
            PayloadError::Overflow => BodyError::TooLarge,
            _ => BodyError::Unreadable,
        })?;
        decoder.write(&chunk)?;
    }
    decoder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;
    use flate2::write::{GzEncoder, ZlibEncoder};
    use flate2::Compression;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    async fn read_with(
        coding: Option<&str>,
        body: Vec<u8>,
        limit: usize,
    ) -> Result<Vec<u8>, BodyError> {
        let mut request = TestRequest::post();
        if let Some(coding) = coding {
            request = request.insert_header((CONTENT_ENCODING, coding));
        }
        let (req, payload) = request.set_payload(body).to_http_parts();
        read(&req, payload, limit).await
    }

    #[actix_web::test]
    async fn gzip_and_deflate_are_undone_and_identity_is_as_sent() {
        let data = b"{\"hello\": \"world\"}".repeat(100);
        assert_eq!(read_with(None, data.clone(), 4096).await.unwrap(), data);
        assert_eq!(
            read_with(Some("identity"), data.clone(), 4096)
                .await
                .unwrap(),
            data
        );
        assert_eq!(
            read_with(Some("gzip"), gzip(&data), 4096).await.unwrap(),
            data
        );
        assert_eq!(
            read_with(Some("X-GZIP"), gzip(&data), 4096).await.unwrap(),
            data
        );
        let mut zlib = ZlibEncoder::new(Vec::new(), Compression::default());
        zlib.write_all(&data).unwrap();
        let deflated = zlib.finish().unwrap();
        assert_eq!(
            read_with(Some("deflate"), deflated, 4096).await.unwrap(),
            data
        );
    }

    #[actix_web::test]
    async fn the_limit_is_on_the_decoded_bytes_and_a_bomb_stops_at_it() {
        // 16 MiB of zeros in about 16 KiB: refused at the limit, holding no more than it.
        let bomb = gzip(&vec![0u8; 16 << 20]);
        assert!(bomb.len() < 64 << 10);
        assert_eq!(
            read_with(Some("gzip"), bomb, 1 << 20).await,
            Err(BodyError::TooLarge)
        );
        let exact = vec![b'x'; 1000];
        assert_eq!(
            read_with(Some("gzip"), gzip(&exact), 1000).await.unwrap(),
            exact
        );
        assert_eq!(
            read_with(Some("gzip"), gzip(&exact), 999).await,
            Err(BodyError::TooLarge)
        );
        assert_eq!(read_with(None, exact, 999).await, Err(BodyError::TooLarge));
    }

    #[actix_web::test]
    async fn other_codings_and_broken_bodies_are_refused() {
        for coding in ["br", "zstd", "gzip, gzip", "compress"] {
            assert_eq!(
                read_with(Some(coding), b"x".to_vec(), 10).await,
                Err(BodyError::UnsupportedEncoding),
                "{coding}"
            );
        }
        assert_eq!(
            read_with(Some("gzip"), b"not gzip at all".to_vec(), 100).await,
            Err(BodyError::Unreadable)
        );
        let mut truncated = gzip(b"hello hello hello hello");
        truncated.truncate(truncated.len() - 6);
        assert_eq!(
            read_with(Some("gzip"), truncated, 100).await,
            Err(BodyError::Unreadable)
        );
    }
}
