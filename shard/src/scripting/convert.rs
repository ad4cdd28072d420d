//! Redis's conversions between replies and Lua values, both ways, as `script_lua.c` defines them.
//!
//! Replies to `redis.call` become Lua values according to the script's protocol (`redis.setresp`): in
//! RESP2 a status is `{ok=...}`, an error `{err=...}`, a null `false`; in RESP3 maps, sets, doubles, big
//! numbers and verbatim strings become `{map=}`, `{set=}`, `{double=}`, `{big_number=}`,
//! `{verbatim_string={format=, string=}}`, a null is `nil` and booleans are booleans. A script's return
//! value is written through the caller's `ReplyBuf`, so RESP3 types reach a RESP2 caller in their RESP2
//! form. Only booleans depend on the script's protocol: in RESP2 mode `true` is `:1` and `false` a null.

use mlua::{Lua, Result, Table, Value};
use ringcache_common::resp::{ReplyBuf, ReplyValue, ReplyWriter};

/// A reply to `redis.call` as a Lua value.
pub fn reply_to_lua(lua: &Lua, v: &ReplyValue) -> Result<Value> {
    let tagged = |field: &str, value: Value| -> Result<Value> {
        let t = lua.create_table()?;
        t.raw_set(field, value)?;
        Ok(Value::Table(t))
    };
    let string = |b: &[u8]| -> Result<Value> { Ok(Value::String(lua.create_string(b)?)) };
    Ok(match v {
        ReplyValue::Simple(s) => tagged("ok", string(s)?)?,
        ReplyValue::Error(s) => tagged("err", string(s)?)?,
        ReplyValue::Integer(n) => Value::Number(*n as f64),
        ReplyValue::Bulk(Some(b)) => string(b)?,
        ReplyValue::Bulk(None) | ReplyValue::Array(None) => Value::Boolean(false),
        ReplyValue::Array(Some(items)) | ReplyValue::Push(items) => Value::Table(array(lua, items)?),
        ReplyValue::Null => Value::Nil,
        ReplyValue::Boolean(b) => Value::Boolean(*b),
        ReplyValue::Double(text) => {
            let n: f64 = std::str::from_utf8(text).ok().and_then(|t| t.parse().ok()).unwrap_or(0.0);
            tagged("double", Value::Number(n))?
        }
        ReplyValue::BigNumber(digits) => tagged("big_number", string(digits)?)?,
        ReplyValue::Verbatim(format, text) => {
            let inner = lua.create_table()?;
            inner.raw_set("format", lua.create_string(format)?)?;
            inner.raw_set("string", lua.create_string(text)?)?;
            tagged("verbatim_string", Value::Table(inner))?
        }
        ReplyValue::Map(pairs) => {
            let inner = lua.create_table()?;
            for (k, v) in pairs {
                inner.raw_set(reply_to_lua(lua, k)?, reply_to_lua(lua, v)?)?;
            }
            tagged("map", Value::Table(inner))?
        }
        ReplyValue::Set(items) => {
            let inner = lua.create_table()?;
            for item in items {
                inner.raw_set(reply_to_lua(lua, item)?, true)?;
            }
            tagged("set", Value::Table(inner))?
        }
    })
}

fn array(lua: &Lua, items: &[ReplyValue]) -> Result<Table> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.iter().enumerate() {
        t.raw_set(i + 1, reply_to_lua(lua, item)?)?;
    }
    Ok(t)
}

/// Writes a script's return value as a reply. `script_resp3`: the script switched to RESP3 with
/// `redis.setresp(3)` (booleans are then booleans).
pub fn lua_to_reply(v: &Value, script_resp3: bool, out: &mut ReplyBuf) -> Result<()> {
    write(v, script_resp3, out, 0)
}

fn field(t: &Table, name: &str) -> Result<Value> {
    t.raw_get(name)
}

fn write(v: &Value, resp3: bool, out: &mut ReplyBuf, depth: usize) -> Result<()> {
    if depth > 1000 {
        out.error("ERR reached lua stack limit");
        return Ok(());
    }
    match v {
        Value::String(s) => out.bulk(&s.as_bytes()),
        Value::Boolean(b) if resp3 => out.boolean(*b),
        Value::Boolean(true) => out.integer(1),
        Value::Boolean(false) => out.null(),
        Value::Integer(i) => out.integer(*i),
        Value::Number(n) => out.integer(*n as i64),
        Value::Table(t) => {
            if let Value::String(e) = field(t, "err")? {
                out.error(&e.to_string_lossy());
            } else if let Value::String(s) = field(t, "ok")? {
                out.simple(&s.to_string_lossy().replace(['\r', '\n'], " "));
            } else if let Some(d) = number(&field(t, "double")?) {
                out.double(d);
            } else if let Value::String(s) = field(t, "big_number")? {
                out.big_number(&s.as_bytes());
            } else if let Value::Table(map) = field(t, "map")? {
                let pairs: Vec<(Value, Value)> = map.pairs::<Value, Value>().collect::<Result<_>>()?;
                out.map_len(pairs.len());
                for (k, v) in &pairs {
                    write(k, resp3, out, depth + 1)?;
                    write(v, resp3, out, depth + 1)?;
                }
            } else if let Value::Table(set) = field(t, "set")? {
                let members: Vec<Value> =
                    set.pairs::<Value, Value>().map(|p| p.map(|(k, _)| k)).collect::<Result<_>>()?;
                out.set_len(members.len());
                for m in &members {
                    write(m, resp3, out, depth + 1)?;
                }
            } else if let Value::Table(v) = field(t, "verbatim_string")? {
                let format: Vec<u8> = match field(&v, "format")? {
                    Value::String(f) => f.as_bytes().to_vec(),
                    _ => b"txt".to_vec(),
                };
                let text: Vec<u8> = match field(&v, "string")? {
                    Value::String(s) => s.as_bytes().to_vec(),
                    _ => Vec::new(),
                };
                let mut fmt = [b't', b'x', b't'];
                if format.len() == 3 {
                    fmt.copy_from_slice(&format);
                }
                out.verbatim_format(&fmt, &text);
            } else {
                // An array: the elements from 1 up to the first nil.
                let mut items = Vec::new();
                loop {
                    let v: Value = t.raw_get(items.len() + 1)?;
                    if v.is_nil() {
                        break;
                    }
                    items.push(v);
                }
                out.array_len(items.len());
                for item in &items {
                    write(item, resp3, out, depth + 1)?;
                }
            }
        }
        _ => out.null(),
    }
    Ok(())
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => Some(*n),
        Value::Integer(i) => Some(*i as f64),
        _ => None,
    }
}
