//! A reader of the Thrift wire format, binary and compact protocols, into a
//! generic value tree. Jaeger's clients speak both (compact on UDP 6831,
//! binary on UDP 6832 and HTTP 14268), and so do Zipkin's v1 Thrift
//! clients; each protocol then reads its own structs field by field
//! (`jaeger::batch`, `zipkin::v1`). Written against the published protocol
//! specifications; every length is checked against the bytes left, and
//! nesting is bounded, so hostile input fails cleanly.

use std::fmt;

/// A decoded Thrift value. Integers keep their width; sets are lists.
#[derive(Clone, Debug, PartialEq)]
pub enum TValue {
    Bool(bool),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    Double(f64),
    Binary(Vec<u8>),
    Struct(Vec<(i16, TValue)>),
    List(Vec<TValue>),
    Map(Vec<(TValue, TValue)>),
}

/// Why bytes are not the Thrift they claim to be.
#[derive(Clone, Debug, PartialEq)]
pub struct ThriftError(pub String);

impl fmt::Display for ThriftError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ThriftError {}

fn err<T>(msg: impl Into<String>) -> Result<T, ThriftError> {
    Err(ThriftError(msg.into()))
}

const MAX_DEPTH: usize = 32;

/// The generic wire types, shared by both protocols after decoding.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ty {
    Bool,
    Byte,
    Double,
    I16,
    I32,
    I64,
    Binary,
    Struct,
    Map,
    Set,
    List,
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ThriftError> {
        if self.b.len() - self.pos < n {
            return err(format!(
                "unexpected end of data: needed {n} bytes at offset {}, {} left",
                self.pos,
                self.b.len() - self.pos
            ));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, ThriftError> {
        Ok(self.take(1)?[0])
    }
    fn left(&self) -> usize {
        self.b.len() - self.pos
    }
    fn varint(&mut self) -> Result<u64, ThriftError> {
        let mut v: u64 = 0;
        for shift in (0..70).step_by(7) {
            let byte = self.u8()?;
            if shift == 63 && byte > 1 {
                return err("varint overflows 64 bits");
            }
            v |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        err("varint longer than 10 bytes")
    }
    fn zigzag(&mut self) -> Result<i64, ThriftError> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }
}

/// A message envelope: method name, message type and sequence id.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub name: String,
    pub kind: u8,
    pub seq_id: i32,
    pub body: Vec<(i16, TValue)>,
}

/// Which of the two protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Binary,
    Compact,
}

/// Reads one message (envelope plus argument struct).
pub fn read_message(bytes: &[u8], protocol: Protocol) -> Result<Message, ThriftError> {
    let mut c = Cursor { b: bytes, pos: 0 };
    match protocol {
        Protocol::Compact => {
            if c.u8()? != 0x82 {
                return err("not a Thrift compact message (protocol id is not 0x82)");
            }
            let vt = c.u8()?;
            if vt & 0x1f != 1 {
                return err(format!(
                    "unsupported compact protocol version {}",
                    vt & 0x1f
                ));
            }
            let seq_id = c.varint()? as u32 as i32;
            let name = compact_binary(&mut c)?;
            let body = compact_struct(&mut c, 0)?;
            Ok(Message {
                name: String::from_utf8_lossy(&name).into_owned(),
                kind: vt >> 5,
                seq_id,
                body,
            })
        }
        Protocol::Binary => {
            let first = i32::from_be_bytes(c.take(4)?.try_into().unwrap());
            let (name, kind) = if first < 0 {
                if (first as u32) & 0xffff_0000 != 0x8001_0000 {
                    return err("unsupported Thrift binary protocol version");
                }
                let kind = (first & 0xff) as u8;
                (binary_string(&mut c)?, kind)
            } else {
                let name = c.take(first as usize)?.to_vec();
                (name, c.u8()?)
            };
            let seq_id = i32::from_be_bytes(c.take(4)?.try_into().unwrap());
            let body = binary_struct(&mut c, 0)?;
            Ok(Message {
                name: String::from_utf8_lossy(&name).into_owned(),
                kind,
                seq_id,
                body,
            })
        }
    }
}

/// Reads one struct (no envelope), as Jaeger's HTTP endpoint receives a
/// `Batch`.
pub fn read_struct(bytes: &[u8], protocol: Protocol) -> Result<Vec<(i16, TValue)>, ThriftError> {
    let mut c = Cursor { b: bytes, pos: 0 };
    match protocol {
        Protocol::Binary => binary_struct(&mut c, 0),
        Protocol::Compact => compact_struct(&mut c, 0),
    }
}

/// Reads one bare list (how Zipkin's v1 Thrift endpoint receives spans).
pub fn read_list(bytes: &[u8], protocol: Protocol) -> Result<Vec<TValue>, ThriftError> {
    let mut c = Cursor { b: bytes, pos: 0 };
    let v = match protocol {
        Protocol::Binary => binary_value(&mut c, Ty::List, 0)?,
        Protocol::Compact => compact_value(&mut c, Ty::List, 0)?,
    };
    match v {
        TValue::List(items) => Ok(items),
        _ => err("expected a list"),
    }
}

// ---- binary protocol ----------------------------------------------------

fn binary_ty(t: u8) -> Result<Ty, ThriftError> {
    Ok(match t {
        2 => Ty::Bool,
        3 => Ty::Byte,
        4 => Ty::Double,
        6 => Ty::I16,
        8 => Ty::I32,
        10 => Ty::I64,
        11 => Ty::Binary,
        12 => Ty::Struct,
        13 => Ty::Map,
        14 => Ty::Set,
        15 => Ty::List,
        other => return err(format!("unknown Thrift binary type id {other}")),
    })
}

fn binary_string(c: &mut Cursor) -> Result<Vec<u8>, ThriftError> {
    let len = i32::from_be_bytes(c.take(4)?.try_into().unwrap());
    if len < 0 {
        return err(format!("negative string length {len}"));
    }
    Ok(c.take(len as usize)?.to_vec())
}

fn binary_size(c: &mut Cursor, min_elem: usize) -> Result<usize, ThriftError> {
    let n = i32::from_be_bytes(c.take(4)?.try_into().unwrap());
    if n < 0 || (n as usize).saturating_mul(min_elem) > c.left() {
        return err(format!(
            "collection size {n} does not fit the {} bytes left",
            c.left()
        ));
    }
    Ok(n as usize)
}

fn binary_struct(c: &mut Cursor, depth: usize) -> Result<Vec<(i16, TValue)>, ThriftError> {
    if depth > MAX_DEPTH {
        return err("structs nested too deeply");
    }
    let mut fields = Vec::new();
    loop {
        let t = c.u8()?;
        if t == 0 {
            return Ok(fields);
        }
        let ty = binary_ty(t)?;
        let id = i16::from_be_bytes(c.take(2)?.try_into().unwrap());
        fields.push((id, binary_value(c, ty, depth + 1)?));
    }
}

fn min_size(ty: Ty) -> usize {
    match ty {
        Ty::Double | Ty::I64 => 8,
        Ty::I32 | Ty::Binary => 4,
        Ty::I16 => 2,
        _ => 1,
    }
}

fn binary_value(c: &mut Cursor, ty: Ty, depth: usize) -> Result<TValue, ThriftError> {
    if depth > MAX_DEPTH {
        return err("values nested too deeply");
    }
    Ok(match ty {
        Ty::Bool => TValue::Bool(c.u8()? != 0),
        Ty::Byte => TValue::I8(c.u8()? as i8),
        Ty::Double => TValue::Double(f64::from_be_bytes(c.take(8)?.try_into().unwrap())),
        Ty::I16 => TValue::I16(i16::from_be_bytes(c.take(2)?.try_into().unwrap())),
        Ty::I32 => TValue::I32(i32::from_be_bytes(c.take(4)?.try_into().unwrap())),
        Ty::I64 => TValue::I64(i64::from_be_bytes(c.take(8)?.try_into().unwrap())),
        Ty::Binary => TValue::Binary(binary_string(c)?),
        Ty::Struct => TValue::Struct(binary_struct(c, depth)?),
        Ty::List | Ty::Set => {
            let et = binary_ty(c.u8()?)?;
            let n = binary_size(c, min_size(et))?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(binary_value(c, et, depth + 1)?);
            }
            TValue::List(v)
        }
        Ty::Map => {
            let kt = binary_ty(c.u8()?)?;
            let vt = binary_ty(c.u8()?)?;
            let n = binary_size(c, min_size(kt) + min_size(vt))?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                let k = binary_value(c, kt, depth + 1)?;
                v.push((k, binary_value(c, vt, depth + 1)?));
            }
            TValue::Map(v)
        }
    })
}

// ---- compact protocol ---------------------------------------------------

fn compact_ty(t: u8) -> Result<Ty, ThriftError> {
    Ok(match t {
        1 | 2 => Ty::Bool,
        3 => Ty::Byte,
        4 => Ty::I16,
        5 => Ty::I32,
        6 => Ty::I64,
        7 => Ty::Double,
        8 => Ty::Binary,
        9 => Ty::List,
        10 => Ty::Set,
        11 => Ty::Map,
        12 => Ty::Struct,
        other => return err(format!("unknown Thrift compact type id {other}")),
    })
}

fn compact_binary(c: &mut Cursor) -> Result<Vec<u8>, ThriftError> {
    let len = c.varint()?;
    if len > c.left() as u64 {
        return err(format!(
            "string of {len} bytes does not fit the {} bytes left",
            c.left()
        ));
    }
    Ok(c.take(len as usize)?.to_vec())
}

fn compact_struct(c: &mut Cursor, depth: usize) -> Result<Vec<(i16, TValue)>, ThriftError> {
    if depth > MAX_DEPTH {
        return err("structs nested too deeply");
    }
    let mut fields = Vec::new();
    let mut last: i16 = 0;
    loop {
        let h = c.u8()?;
        if h == 0 {
            return Ok(fields);
        }
        let t = h & 0x0f;
        let delta = (h >> 4) as i16;
        let id = if delta != 0 {
            last.checked_add(delta)
                .ok_or_else(|| ThriftError("field id overflow".into()))?
        } else {
            i16::try_from(c.zigzag()?).map_err(|_| ThriftError("field id out of range".into()))?
        };
        last = id;
        let value = match t {
            1 => TValue::Bool(true),
            2 => TValue::Bool(false),
            _ => compact_value(c, compact_ty(t)?, depth + 1)?,
        };
        fields.push((id, value));
    }
}

fn compact_value(c: &mut Cursor, ty: Ty, depth: usize) -> Result<TValue, ThriftError> {
    if depth > MAX_DEPTH {
        return err("values nested too deeply");
    }
    let int = |v: i64, bits: u32| -> Result<i64, ThriftError> {
        if bits < 64 && (v < -(1i64 << (bits - 1)) || v >= 1i64 << (bits - 1)) {
            return err(format!("integer {v} does not fit {bits} bits"));
        }
        Ok(v)
    };
    Ok(match ty {
        Ty::Bool => TValue::Bool(c.u8()? == 1),
        Ty::Byte => TValue::I8(c.u8()? as i8),
        Ty::I16 => TValue::I16(int(c.zigzag()?, 16)? as i16),
        Ty::I32 => TValue::I32(int(c.zigzag()?, 32)? as i32),
        Ty::I64 => TValue::I64(c.zigzag()?),
        Ty::Double => TValue::Double(f64::from_le_bytes(c.take(8)?.try_into().unwrap())),
        Ty::Binary => TValue::Binary(compact_binary(c)?),
        Ty::Struct => TValue::Struct(compact_struct(c, depth)?),
        Ty::List | Ty::Set => {
            let h = c.u8()?;
            let et = compact_ty(h & 0x0f)?;
            let n = match h >> 4 {
                15 => c.varint()?,
                n => n as u64,
            };
            if n > c.left() as u64 {
                return err(format!(
                    "collection size {n} does not fit the {} bytes left",
                    c.left()
                ));
            }
            let mut v = Vec::with_capacity(n as usize);
            for _ in 0..n {
                v.push(compact_value(c, et, depth + 1)?);
            }
            TValue::List(v)
        }
        Ty::Map => {
            let n = c.varint()?;
            if n == 0 {
                return Ok(TValue::Map(Vec::new()));
            }
            if n > c.left() as u64 {
                return err(format!(
                    "map size {n} does not fit the {} bytes left",
                    c.left()
                ));
            }
            let kv = c.u8()?;
            let (kt, vt) = (compact_ty(kv >> 4)?, compact_ty(kv & 0x0f)?);
            let mut v = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let k = compact_value(c, kt, depth + 1)?;
                v.push((k, compact_value(c, vt, depth + 1)?));
            }
            TValue::Map(v)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_struct_with_deltas_and_long_ids() {
        // field 1: i32 zigzag(-1)=1; field 5 (delta 4): binary "hi";
        // field 300 (long form): bool true; stop.
        let bytes = [0x15, 0x01, 0x48, 0x02, b'h', b'i', 0x01, 0xd8, 0x04, 0x00];
        let s = read_struct(&bytes, Protocol::Compact).unwrap();
        assert_eq!(
            s,
            vec![
                (1, TValue::I32(-1)),
                (5, TValue::Binary(b"hi".to_vec())),
                (300, TValue::Bool(true))
            ]
        );
    }

    #[test]
    fn binary_struct_and_list() {
        // field 2: list<i64> [7]; stop.
        let mut b = vec![15, 0, 2, 10, 0, 0, 0, 1];
        b.extend_from_slice(&7i64.to_be_bytes());
        b.push(0);
        let s = read_struct(&b, Protocol::Binary).unwrap();
        assert_eq!(s, vec![(2, TValue::List(vec![TValue::I64(7)]))]);
    }

    #[test]
    fn hostile_sizes_fail_cleanly() {
        // A list claiming 2^31 elements.
        let b = [15, 0, 1, 10, 0x7f, 0xff, 0xff, 0xff];
        assert!(read_struct(&b, Protocol::Binary).is_err());
        // Deep nesting.
        let deep = vec![0x1c; 200];
        assert!(read_struct(&deep, Protocol::Compact).is_err());
        assert!(read_message(&[0x82], Protocol::Compact).is_err());
        assert!(read_message(&[], Protocol::Binary).is_err());
    }
}
