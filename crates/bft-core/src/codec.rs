//! A small, bounded binary codec: big-endian integers and length-prefixed byte strings. Decoding
//! never panics and never allocates more than the input could hold: every length is checked
//! against the bytes that remain and against a per-field limit.

use std::fmt;

/// Largest byte string a message may carry (an update payload, a signature, a share).
pub const MAX_BYTES: usize = 64 * 1024;
/// Largest state snapshot a message may carry.
pub const MAX_SNAPSHOT: usize = 16 * 1024 * 1024;
/// Largest list a message may carry (updates in a batch, Accepts in a proof).
pub const MAX_LIST: usize = 4096;

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed message: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Appends encoded values to a buffer.
#[derive(Default)]
pub struct Writer {
    /// The encoded bytes.
    pub buf: Vec<u8>,
}

impl Writer {
    /// A writer whose buffer holds `n` bytes before it grows (messages are encoded in one go:
    /// starting near the final size saves the reallocations of doubling from empty).
    pub fn with_capacity(n: usize) -> Self {
        Writer {
            buf: Vec::with_capacity(n),
        }
    }

    /// A u8.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    /// A big-endian u16.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// A big-endian u32.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// A big-endian u64.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// A byte string with a u32 length prefix.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.u32(v.len() as u32);
        self.buf.extend_from_slice(v);
        self
    }
    /// Fixed 32 bytes (a digest).
    pub fn digest(&mut self, v: &[u8; 32]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }
    /// A list: its u32 length, then each item as `put` writes it.
    pub fn list<T>(&mut self, items: &[T], mut put: impl FnMut(&mut Writer, &T)) -> &mut Self {
        self.u32(items.len() as u32);
        for item in items {
            put(self, item);
        }
        self
    }
}

/// Reads encoded values from a byte slice.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Read from `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        if self.data.len() - self.pos < n {
            return Err(DecodeError(format!(
                "truncated {what}: need {n} bytes, {} left",
                self.data.len() - self.pos
            )));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// A u8.
    pub fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }
    /// A u16.
    pub fn u16(&mut self, what: &str) -> Result<u16, DecodeError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    /// A u32.
    pub fn u32(&mut self, what: &str) -> Result<u32, DecodeError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes(b.try_into().expect("4 bytes")))
    }
    /// A u64.
    pub fn u64(&mut self, what: &str) -> Result<u64, DecodeError> {
        let b = self.take(8, what)?;
        Ok(u64::from_be_bytes(b.try_into().expect("8 bytes")))
    }
    /// A length-prefixed byte string of at most `MAX_BYTES`.
    pub fn bytes(&mut self, what: &str) -> Result<Vec<u8>, DecodeError> {
        self.bytes_max(what, MAX_BYTES)
    }

    /// A length-prefixed byte string of at most `max` bytes.
    pub fn bytes_max(&mut self, what: &str, max: usize) -> Result<Vec<u8>, DecodeError> {
        let n = self.u32(what)? as usize;
        if n > max {
            return Err(DecodeError(format!("{what}: length {n} exceeds {max}")));
        }
        Ok(self.take(n, what)?.to_vec())
    }
    /// 32 bytes.
    pub fn digest(&mut self, what: &str) -> Result<[u8; 32], DecodeError> {
        Ok(self.take(32, what)?.try_into().expect("32 bytes"))
    }
    /// A list length of at most `MAX_LIST`, also bounded by the bytes left (each item ≥ `min_item` bytes).
    pub fn list_len(&mut self, what: &str, min_item: usize) -> Result<usize, DecodeError> {
        let n = self.u32(what)? as usize;
        let left = self.data.len() - self.pos;
        if n > MAX_LIST || n.saturating_mul(min_item.max(1)) > left {
            return Err(DecodeError(format!("{what}: implausible list length {n}")));
        }
        Ok(n)
    }
    /// A list as [`Writer::list`] writes it: a length checked by [`Reader::list_len`], then
    /// each item as `get` reads it.
    pub fn list<T>(
        &mut self,
        what: &str,
        min_item: usize,
        mut get: impl FnMut(&mut Reader<'a>) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let n = self.list_len(what, min_item)?;
        (0..n).map(|_| get(self)).collect()
    }
    /// A u8 that must be 0 (false) or 1 (true); anything else is a "bad `what`" error.
    pub fn flag(&mut self, what: &str) -> Result<bool, DecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(DecodeError(format!("bad {what} {b}"))),
        }
    }
    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// Fail unless every byte was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.pos == self.data.len() {
            Ok(())
        } else {
            Err(DecodeError(format!(
                "{} trailing bytes",
                self.data.len() - self.pos
            )))
        }
    }
}

/// Decodes a whole message `version (u8) | type (u8) | body`: rejects any version but
/// `version`, hands the type byte and a reader of the body to `body`, and rejects trailing
/// bytes.
pub fn decode_message<T>(
    bytes: &[u8],
    version: u8,
    body: impl FnOnce(u8, &mut Reader) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let mut r = Reader::new(bytes);
    let v = r.u8("version")?;
    if v != version {
        return Err(DecodeError(format!("unsupported wire version {v}")));
    }
    let tag = r.u8("type")?;
    let msg = body(tag, &mut r)?;
    r.finish()?;
    Ok(msg)
}
