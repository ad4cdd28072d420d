//! The libraries Redis embeds in its Lua: `bit` (LuaBitOp), `cjson`, `cmsgpack` and `struct`, written here
//! in Rust with the same functions, formats and error texts scripts rely on.

use mlua::{Function, LightUserData, Lua, MultiValue, Result, Table, Value, Variadic};

/// Registers `bit`, `cjson`, `cmsgpack` and `struct` as globals.
pub fn register(lua: &Lua) -> Result<()> {
    let g = lua.globals();
    g.set("bit", bit(lua)?)?;
    g.set("cjson", cjson(lua)?)?;
    g.set("cmsgpack", cmsgpack(lua)?)?;
    g.set("struct", structlib(lua)?)?;
    Ok(())
}

fn err(msg: impl Into<String>) -> mlua::Error {
    mlua::Error::RuntimeError(msg.into())
}

// ---------------------------------------------------------------------------------------------- bit

/// LuaBitOp's conversion of a number to a 32-bit integer: rounded, then taken modulo 2^32.
fn tobit(x: f64) -> i32 {
    let r = x.round_ties_even();
    if !r.is_finite() {
        return 0;
    }
    (r.rem_euclid(4_294_967_296.0) as u64 as u32) as i32
}

fn bit(lua: &Lua) -> Result<Table> {
    let t = lua.create_table()?;
    t.set("tobit", lua.create_function(|_, x: f64| Ok(tobit(x)))?)?;
    t.set("bnot", lua.create_function(|_, x: f64| Ok(!tobit(x)))?)?;
    let fold = |lua: &Lua, f: fn(i32, i32) -> i32| {
        lua.create_function(move |_, xs: Variadic<f64>| {
            let mut it = xs.iter();
            let first = it.next().ok_or_else(|| err("bad argument #1 (number expected, got no value)"))?;
            Ok(it.fold(tobit(*first), |acc, &x| f(acc, tobit(x))))
        })
    };
    t.set("band", fold(lua, |a, b| a & b)?)?;
    t.set("bor", fold(lua, |a, b| a | b)?)?;
    t.set("bxor", fold(lua, |a, b| a ^ b)?)?;
    let shift = |lua: &Lua, f: fn(u32, u32) -> u32| {
        lua.create_function(move |_, (x, n): (f64, f64)| Ok(f(tobit(x) as u32, (tobit(n) & 31) as u32) as i32))
    };
    t.set("lshift", shift(lua, |x, n| x << n)?)?;
    t.set("rshift", shift(lua, |x, n| x >> n)?)?;
    t.set("arshift", shift(lua, |x, n| ((x as i32) >> n) as u32)?)?;
    t.set("rol", shift(lua, |x, n| x.rotate_left(n))?)?;
    t.set("ror", shift(lua, |x, n| x.rotate_right(n))?)?;
    t.set("bswap", lua.create_function(|_, x: f64| Ok((tobit(x) as u32).swap_bytes() as i32))?)?;
    t.set(
        "tohex",
        lua.create_function(|_, (x, n): (f64, Option<f64>)| {
            let n = n.map_or(8, tobit);
            let upper = n < 0;
            let digits = n.unsigned_abs().min(8) as usize;
            let value = tobit(x) as u32;
            let masked = if digits >= 8 { value } else { value & ((1u32 << (4 * digits)) - 1) };
            Ok(if upper { format!("{masked:0digits$X}") } else { format!("{masked:0digits$x}") })
        })?,
    )?;
    Ok(t)
}

// -------------------------------------------------------------------------------------------- cjson

/// cjson.null: a light userdata holding NULL, as lua-cjson defines it.
fn json_null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// Formats a number as lua-cjson does (`%.14g`).
fn format_g14(n: f64) -> String {
    if n.is_nan() {
        return "nan".into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if n == n.trunc() && n.abs() < 1e15 {
        return format!("{}", n as i64);
    }
    let exp = n.abs().log10().floor() as i32;
    if !(-5..14).contains(&exp) {
        let s = format!("{n:.13e}");
        let (mant, e) = s.split_once('e').unwrap_or((&s, "0"));
        let mant = mant.trim_end_matches('0').trim_end_matches('.');
        let e: i32 = e.parse().unwrap_or(0);
        return format!("{mant}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    let decimals = (13 - exp).max(0) as usize;
    let s = format!("{n:.decimals$}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The length of a table if it is an array (keys exactly 1..n), or `None`.
fn array_len(t: &Table) -> Result<Option<usize>> {
    let mut max = 0usize;
    let mut count = 0usize;
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair?;
        match k {
            Value::Integer(i) if i >= 1 => max = max.max(i as usize),
            Value::Number(n) if n >= 1.0 && n == n.trunc() => max = max.max(n as usize),
            _ => return Ok(None),
        }
        count += 1;
    }
    Ok((count == max).then_some(max))
}

fn json_encode(v: &Value, depth: usize, out: &mut String) -> Result<()> {
    if depth > 1000 {
        return Err(err("Cannot serialise, excessive nesting (1001)"));
    }
    match v {
        Value::Nil => out.push_str("null"),
        Value::LightUserData(u) if u.0.is_null() => out.push_str("null"),
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Integer(i) => out.push_str(&i.to_string()),
        Value::Number(n) => {
            if !n.is_finite() {
                return Err(err("Cannot serialise number: must not be NaN or Inf"));
            }
            out.push_str(&format_g14(*n));
        }
        Value::String(s) => {
            out.push_str(&serde_json::to_string(&s.to_string_lossy()).map_err(|e| err(e.to_string()))?);
        }
        Value::Table(t) => match array_len(t)? {
            Some(n) if n > 0 => {
                out.push('[');
                for i in 1..=n {
                    if i > 1 {
                        out.push(',');
                    }
                    json_encode(&t.raw_get::<Value>(i)?, depth + 1, out)?;
                }
                out.push(']');
            }
            _ => {
                out.push('{');
                let mut first = true;
                for pair in t.pairs::<Value, Value>() {
                    let (k, v) = pair?;
                    let key = match &k {
                        Value::String(s) => s.to_string_lossy().to_string(),
                        Value::Integer(i) => i.to_string(),
                        Value::Number(n) => format_g14(*n),
                        _ => return Err(err("Cannot serialise table: table key must be a number or string")),
                    };
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    out.push_str(&serde_json::to_string(&key).map_err(|e| err(e.to_string()))?);
                    out.push(':');
                    json_encode(&v, depth + 1, out)?;
                }
                out.push('}');
            }
        },
        other => return Err(err(format!("Cannot serialise {}: type not supported", other.type_name()))),
    }
    Ok(())
}

fn json_to_lua(lua: &Lua, v: &serde_json::Value) -> Result<Value> {
    Ok(match v {
        serde_json::Value::Null => json_null(),
        serde_json::Value::Bool(b) => Value::Boolean(*b),
        serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Value::String(lua.create_string(s)?),
        serde_json::Value::Array(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, json_to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
        serde_json::Value::Object(map) => {
            let t = lua.create_table_with_capacity(0, map.len())?;
            for (k, item) in map {
                t.raw_set(k.as_str(), json_to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
    })
}

fn cjson(lua: &Lua) -> Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "encode",
        lua.create_function(|_, v: Value| {
            let mut out = String::new();
            json_encode(&v, 0, &mut out)?;
            Ok(out)
        })?,
    )?;
    t.set(
        "decode",
        lua.create_function(|lua, s: mlua::String| {
            let bytes = s.as_bytes();
            let parsed: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
                err(format!("Expected value but found invalid token at character {}", e.column().max(1)))
            })?;
            json_to_lua(lua, &parsed)
        })?,
    )?;
    t.set("null", json_null())?;
    // lua-cjson's settings: accepted, and answered with their defaults.
    for (name, defaults) in [
        ("encode_keep_buffer", "true"),
        ("encode_max_depth", "1000"),
        ("decode_max_depth", "1000"),
        ("encode_number_precision", "14"),
        ("encode_invalid_numbers", "false"),
        ("decode_invalid_numbers", "true"),
        ("encode_sparse_array", "false"),
    ] {
        let f: Function = lua.load(format!("return function() return {defaults} end")).set_name("=ringcache").eval()?;
        t.set(name, f)?;
    }
    t.set("_NAME", "cjson")?;
    t.set("_VERSION", "2.1.0")?;
    Ok(t)
}

// ----------------------------------------------------------------------------------------- cmsgpack

fn mp_encode(v: &Value, depth: usize, out: &mut Vec<u8>) -> Result<()> {
    use rmp::encode as e;
    match v {
        Value::Nil => e::write_nil(out).map_err(|x| err(x.to_string()))?,
        Value::LightUserData(u) if u.0.is_null() => e::write_nil(out).map_err(|x| err(x.to_string()))?,
        Value::Boolean(b) => e::write_bool(out, *b).map_err(|x| err(x.to_string()))?,
        Value::Integer(i) => mp_int(*i, out)?,
        Value::Number(n) => {
            if n.is_finite() && *n == n.trunc() && n.abs() < 9.2e18 {
                mp_int(*n as i64, out)?;
            } else if (*n as f32) as f64 == *n || n.is_nan() {
                e::write_f32(out, *n as f32).map_err(|x| err(x.to_string()))?;
            } else {
                e::write_f64(out, *n).map_err(|x| err(x.to_string()))?;
            }
        }
        Value::String(s) => {
            // lua-cmsgpack writes strings as raw (fixraw, raw16, raw32): never str8.
            let b = s.as_bytes();
            let len = b.len();
            if len < 32 {
                out.push(0xa0 | len as u8);
            } else if len <= 0xffff {
                out.push(0xda);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            } else {
                out.push(0xdb);
                out.extend_from_slice(&(len as u32).to_be_bytes());
            }
            out.extend_from_slice(&b);
        }
        Value::Table(t) if depth < 16 => match array_len(t)? {
            Some(n) => {
                e::write_array_len(out, n as u32).map_err(|x| err(x.to_string()))?;
                for i in 1..=n {
                    mp_encode(&t.raw_get::<Value>(i)?, depth + 1, out)?;
                }
            }
            None => {
                let pairs: Vec<(Value, Value)> = t.pairs::<Value, Value>().collect::<Result<_>>()?;
                e::write_map_len(out, pairs.len() as u32).map_err(|x| err(x.to_string()))?;
                for (k, v) in &pairs {
                    mp_encode(k, depth + 1, out)?;
                    mp_encode(v, depth + 1, out)?;
                }
            }
        },
        // Too deep, or a type msgpack has no form for: nil, as lua-cmsgpack does.
        _ => e::write_nil(out).map_err(|x| err(x.to_string()))?,
    }
    Ok(())
}

fn mp_int(i: i64, out: &mut Vec<u8>) -> Result<()> {
    let r = if i >= 0 { rmp::encode::write_uint(out, i as u64) } else { rmp::encode::write_sint(out, i) };
    r.map(|_| ()).map_err(|x| err(x.to_string()))
}

/// Decodes one msgpack value at `buf[*pos..]`.
fn mp_decode(lua: &Lua, buf: &[u8], pos: &mut usize, depth: usize) -> Result<Value> {
    let bad = || err("Missing bytes in input.");
    let take = |pos: &mut usize, n: usize| -> Result<&[u8]> {
        let s = buf.get(*pos..*pos + n).ok_or_else(bad)?;
        *pos += n;
        Ok(s)
    };
    let be = |b: &[u8]| b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
    if depth > 64 {
        return Err(err("too deeply nested msgpack input"));
    }
    let tag = *take(pos, 1)?.first().ok_or_else(bad)?;
    let string = |lua: &Lua, pos: &mut usize, n: usize| -> Result<Value> {
        Ok(Value::String(lua.create_string(take(pos, n)?)?))
    };
    Ok(match tag {
        0x00..=0x7f => Value::Integer(i64::from(tag)),
        0xe0..=0xff => Value::Integer(i64::from(tag as i8)),
        0xc0 => Value::Nil,
        0xc2 => Value::Boolean(false),
        0xc3 => Value::Boolean(true),
        0xcc..=0xcf => {
            let n = 1 << (tag - 0xcc);
            let v = be(take(pos, n)?);
            if v <= i64::MAX as u64 {
                Value::Integer(v as i64)
            } else {
                Value::Number(v as f64)
            }
        }
        0xd0 => Value::Integer(i64::from(take(pos, 1)?[0] as i8)),
        0xd1 => Value::Integer(i64::from(be(take(pos, 2)?) as u16 as i16)),
        0xd2 => Value::Integer(i64::from(be(take(pos, 4)?) as u32 as i32)),
        0xd3 => Value::Integer(be(take(pos, 8)?) as i64),
        0xca => Value::Number(f64::from(f32::from_bits(be(take(pos, 4)?) as u32))),
        0xcb => Value::Number(f64::from_bits(be(take(pos, 8)?))),
        0xa0..=0xbf => string(lua, pos, usize::from(tag & 0x1f))?,
        0xd9 | 0xc4 => {
            let n = usize::from(take(pos, 1)?[0]);
            string(lua, pos, n)?
        }
        0xda | 0xc5 => {
            let n = be(take(pos, 2)?) as usize;
            string(lua, pos, n)?
        }
        0xdb | 0xc6 => {
            let n = be(take(pos, 4)?) as usize;
            string(lua, pos, n)?
        }
        0x90..=0x9f | 0xdc | 0xdd => {
            let n = match tag {
                0xdc => be(take(pos, 2)?) as usize,
                0xdd => be(take(pos, 4)?) as usize,
                _ => usize::from(tag & 0x0f),
            };
            let t = lua.create_table_with_capacity(n.min(1 << 16), 0)?;
            for i in 1..=n {
                t.raw_set(i, mp_decode(lua, buf, pos, depth + 1)?)?;
            }
            Value::Table(t)
        }
        0x80..=0x8f | 0xde | 0xdf => {
            let n = match tag {
                0xde => be(take(pos, 2)?) as usize,
                0xdf => be(take(pos, 4)?) as usize,
                _ => usize::from(tag & 0x0f),
            };
            let t = lua.create_table_with_capacity(0, n.min(1 << 16))?;
            for _ in 0..n {
                let k = mp_decode(lua, buf, pos, depth + 1)?;
                let v = mp_decode(lua, buf, pos, depth + 1)?;
                if !matches!(k, Value::Nil) {
                    t.raw_set(k, v)?;
                }
            }
            Value::Table(t)
        }
        _ => return Err(err(format!("unsupported msgpack type 0x{tag:02x}"))),
    })
}

fn cmsgpack(lua: &Lua) -> Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "pack",
        lua.create_function(|lua, args: MultiValue| {
            if args.is_empty() {
                return Err(err("MessagePack pack needs input."));
            }
            let mut out = Vec::new();
            for v in args.iter() {
                mp_encode(v, 0, &mut out)?;
            }
            lua.create_string(&out)
        })?,
    )?;
    let unpack = |lua: &Lua, s: &[u8], offset: usize, limit: usize| -> Result<MultiValue> {
        let mut pos = offset;
        let mut values = Vec::new();
        while pos < s.len() && (limit == 0 || values.len() < limit) {
            values.push(mp_decode(lua, s, &mut pos, 0)?);
        }
        Ok(MultiValue::from_vec(values))
    };
    t.set(
        "unpack",
        lua.create_function(move |lua, s: mlua::String| {
            let bytes = s.as_bytes();
            unpack(lua, &bytes, 0, 0)
        })?,
    )?;
    // unpack_one / unpack_limit return the offset to go on from (-1 at the end) before the values.
    let limited = move |lua: &Lua, s: mlua::String, limit: usize, offset: Option<i64>| -> Result<MultiValue> {
        let bytes = s.as_bytes();
        let start = offset.unwrap_or(0).max(0) as usize;
        let mut pos = start;
        let mut values = Vec::new();
        while pos < bytes.len() && values.len() < limit.max(1) {
            values.push(mp_decode(lua, &bytes, &mut pos, 0)?);
        }
        let next = if pos >= bytes.len() { -1 } else { pos as i64 };
        let mut all = vec![Value::Integer(next)];
        all.extend(values);
        Ok(MultiValue::from_vec(all))
    };
    t.set(
        "unpack_one",
        lua.create_function(move |lua, (s, offset): (mlua::String, Option<i64>)| limited(lua, s, 1, offset))?,
    )?;
    t.set(
        "unpack_limit",
        lua.create_function(move |lua, (s, limit, offset): (mlua::String, i64, Option<i64>)| {
            limited(lua, s, limit.max(0) as usize, offset)
        })?,
    )?;
    t.set("_NAME", "cmsgpack")?;
    t.set("_VERSION", "lua-cmsgpack 0.4.0")?;
    Ok(t)
}

// ------------------------------------------------------------------------------------------- struct

/// One item of a struct format string.
enum Item {
    Int { size: usize, signed: bool },
    Float,
    Double,
    Char(usize),
    ZString,
    Pad,
    Align,
    Endian(bool),
}

fn parse_format(fmt: &[u8]) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut i = 0;
    let number = |i: &mut usize| -> Option<usize> {
        let start = *i;
        while *i < fmt.len() && fmt[*i].is_ascii_digit() {
            *i += 1;
        }
        (start < *i).then(|| std::str::from_utf8(&fmt[start..*i]).ok()?.parse().ok()).flatten()
    };
    while i < fmt.len() {
        let c = fmt[i];
        i += 1;
        items.push(match c {
            b' ' => continue,
            b'>' => Item::Endian(true),
            b'<' => Item::Endian(false),
            b'=' => Item::Endian(cfg!(target_endian = "big")),
            b'!' => {
                number(&mut i);
                Item::Align
            }
            b'x' => Item::Pad,
            b'b' | b'B' => Item::Int { size: 1, signed: c == b'b' },
            b'h' | b'H' => Item::Int { size: 2, signed: c == b'h' },
            b'l' | b'L' | b'j' | b'J' | b'T' => Item::Int { size: 8, signed: c == b'l' || c == b'j' },
            b'i' | b'I' => {
                let size = number(&mut i).unwrap_or(4);
                if !(1..=8).contains(&size) {
                    return Err(err(format!("integral size {size} is larger than limit of 8")));
                }
                Item::Int { size, signed: c == b'i' }
            }
            b'f' => Item::Float,
            b'd' => Item::Double,
            b'c' => Item::Char(number(&mut i).unwrap_or(1)),
            b's' => Item::ZString,
            other => return Err(err(format!("invalid format option '{}'", other as char))),
        });
    }
    Ok(items)
}

fn structlib(lua: &Lua) -> Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "pack",
        lua.create_function(|lua, (fmt, args): (mlua::String, Variadic<Value>)| {
            let mut out = Vec::new();
            let mut big = false;
            let mut args = args.into_iter();
            let mut arg_n = 1;
            for item in parse_format(&fmt.as_bytes())? {
                let mut next = || {
                    arg_n += 1;
                    args.next().ok_or_else(|| err(format!("bad argument #{arg_n} to 'pack' (value expected)")))
                };
                match item {
                    Item::Endian(b) => big = b,
                    Item::Align => {}
                    Item::Pad => out.push(0),
                    Item::Int { size, .. } => {
                        let v = match next()? {
                            Value::Integer(i) => i,
                            Value::Number(n) => n as i64,
                            _ => return Err(err(format!("bad argument #{arg_n} to 'pack' (number expected)"))),
                        };
                        let bytes = v.to_le_bytes();
                        let mut chunk: Vec<u8> = bytes[..size].to_vec();
                        if big {
                            chunk.reverse();
                        }
                        out.extend_from_slice(&chunk);
                    }
                    Item::Float | Item::Double => {
                        let v = match next()? {
                            Value::Integer(i) => i as f64,
                            Value::Number(n) => n,
                            _ => return Err(err(format!("bad argument #{arg_n} to 'pack' (number expected)"))),
                        };
                        let mut chunk = if matches!(item, Item::Float) {
                            (v as f32).to_le_bytes().to_vec()
                        } else {
                            v.to_le_bytes().to_vec()
                        };
                        if big {
                            chunk.reverse();
                        }
                        out.extend_from_slice(&chunk);
                    }
                    Item::Char(_) | Item::ZString => {
                        let s = match next()? {
                            Value::String(s) => s.as_bytes().to_vec(),
                            Value::Integer(i) => i.to_string().into_bytes(),
                            Value::Number(n) => n.to_string().into_bytes(),
                            _ => return Err(err(format!("bad argument #{arg_n} to 'pack' (string expected)"))),
                        };
                        match item {
                            Item::Char(n) => {
                                let n = if n == 0 { s.len() } else { n };
                                if s.len() < n {
                                    return Err(err(format!("bad argument #{arg_n} to 'pack' (string too short)")));
                                }
                                out.extend_from_slice(&s[..n]);
                            }
                            _ => {
                                out.extend_from_slice(&s);
                                out.push(0);
                            }
                        }
                    }
                }
            }
            lua.create_string(&out)
        })?,
    )?;
    t.set(
        "unpack",
        lua.create_function(|lua, (fmt, data, init): (mlua::String, mlua::String, Option<i64>)| {
            let data = data.as_bytes();
            let mut pos = init.unwrap_or(1).max(1) as usize - 1;
            let mut big = false;
            let mut values = Vec::new();
            let short = || err("bad argument #2 to 'unpack' (data string too short)");
            let mut last_number: Option<usize> = None;
            for item in parse_format(&fmt.as_bytes())? {
                match item {
                    Item::Endian(b) => big = b,
                    Item::Align => {}
                    Item::Pad => pos += 1,
                    Item::Int { size, signed } => {
                        let mut chunk: Vec<u8> = data.get(pos..pos + size).ok_or_else(short)?.to_vec();
                        pos += size;
                        if big {
                            chunk.reverse();
                        }
                        let mut raw = [0u8; 8];
                        raw[..size].copy_from_slice(&chunk);
                        let mut v = u64::from_le_bytes(raw);
                        if signed && size < 8 && v & (1 << (size * 8 - 1)) != 0 {
                            v |= !0u64 << (size * 8);
                        }
                        let n = if signed { v as i64 as f64 } else { v as f64 };
                        last_number = Some(n.max(0.0) as usize);
                        values.push(Value::Number(n));
                    }
                    Item::Float | Item::Double => {
                        let size = if matches!(item, Item::Float) { 4 } else { 8 };
                        let mut chunk: Vec<u8> = data.get(pos..pos + size).ok_or_else(short)?.to_vec();
                        pos += size;
                        if big {
                            chunk.reverse();
                        }
                        let v = if size == 4 {
                            f64::from(f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
                        } else {
                            let mut raw = [0u8; 8];
                            raw.copy_from_slice(&chunk);
                            f64::from_le_bytes(raw)
                        };
                        values.push(Value::Number(v));
                    }
                    Item::Char(n) => {
                        // `c0` takes its length from the number unpacked just before.
                        let n = if n == 0 { last_number.take().unwrap_or(0) } else { n };
                        let s = data.get(pos..pos + n).ok_or_else(short)?;
                        pos += n;
                        values.push(Value::String(lua.create_string(s)?));
                    }
                    Item::ZString => {
                        let rest = data.get(pos..).ok_or_else(short)?;
                        let end = rest.iter().position(|&b| b == 0).ok_or_else(|| err("unfinished string in data"))?;
                        values.push(Value::String(lua.create_string(&rest[..end])?));
                        pos += end + 1;
                    }
                }
            }
            values.push(Value::Integer(pos as i64 + 1));
            Ok(MultiValue::from_vec(values))
        })?,
    )?;
    t.set(
        "size",
        lua.create_function(|_, fmt: mlua::String| {
            let mut size = 0usize;
            for item in parse_format(&fmt.as_bytes())? {
                size += match item {
                    Item::Int { size, .. } => size,
                    Item::Float => 4,
                    Item::Double => 8,
                    Item::Char(n) => n,
                    Item::Pad => 1,
                    Item::ZString => return Err(err("options 's' has no fixed size")),
                    Item::Endian(_) | Item::Align => 0,
                };
            }
            Ok(size)
        })?,
    )?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval<T: mlua::FromLua>(lua: &Lua, code: &str) -> T {
        lua.load(code).eval().unwrap()
    }

    #[test]
    fn libraries_answer_as_redis_does() {
        let lua = Lua::new();
        register(&lua).unwrap();
        assert_eq!(eval::<i64>(&lua, "return bit.band(7, 3)"), 3);
        assert_eq!(eval::<i64>(&lua, "return bit.tobit(0xffffffff)"), -1);
        assert_eq!(eval::<i64>(&lua, "return bit.lshift(1, 31)"), i64::from(i32::MIN));
        assert_eq!(eval::<String>(&lua, "return bit.tohex(255, 4)"), "00ff");
        assert_eq!(eval::<String>(&lua, "return bit.tohex(-1, -2)"), "FF");
        assert_eq!(eval::<String>(&lua, "return cjson.encode({1,2,{a=1}})"), r#"[1,2,{"a":1}]"#);
        assert_eq!(eval::<String>(&lua, "return cjson.encode({})"), "{}");
        assert_eq!(eval::<String>(&lua, "return cjson.encode(0.1)"), "0.1");
        assert_eq!(eval::<i64>(&lua, r#"return cjson.decode('[1,2,{"a":1}]')[3].a"#), 1);
        assert!(eval::<bool>(&lua, r#"return cjson.decode('[null]')[1] == cjson.null"#));
        assert_eq!(eval::<mlua::String>(&lua, "return cmsgpack.pack({1,2})").as_bytes().to_vec(), b"\x92\x01\x02");
        assert_eq!(eval::<i64>(&lua, "local a, b = cmsgpack.unpack(cmsgpack.pack(7, 'x')) return a"), 7);
        assert_eq!(eval::<String>(&lua, "return cmsgpack.unpack(cmsgpack.pack({k='v'})).k"), "v",);
        assert_eq!(eval::<mlua::String>(&lua, "return struct.pack('>I2', 258)").as_bytes().to_vec(), b"\x01\x02");
        assert_eq!(eval::<i64>(&lua, "return struct.unpack('<i2', struct.pack('<i2', -2))"), -2);
        assert_eq!(eval::<i64>(&lua, "return struct.size('>I4bd')"), 13);
        assert_eq!(eval::<String>(&lua, "local s = struct.unpack('s', 'ab\\0cd') return s"), "ab");
    }
}
