//! A small YAML writer for JSON values (block style, keys in serde_json's sorted order; strings double-quoted, which YAML reads
//! exactly as JSON strings), enough for Ansible inventories without another dependency.

use serde_json::Value;

/// `value` as a YAML document.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::from("---\n");
    write_value(&mut out, value, 0, false);
    out
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some("null".into()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(Value::String(s.clone()).to_string()),
        Value::Array(a) if a.is_empty() => Some("[]".into()),
        Value::Object(o) if o.is_empty() => Some("{}".into()),
        Value::Array(a) if a.iter().all(|x| !x.is_array() && !x.is_object()) => Some(format!(
            "[{}]",
            a.iter()
                .map(|x| scalar(x).expect("scalar"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        _ => None,
    }
}

fn key(k: &str) -> String {
    let plain = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        && !k.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
        && !matches!(
            k,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        k.to_string()
    } else {
        Value::String(k.to_string()).to_string()
    }
}

/// Writes `v` at `indent`; `inline` means the caller already wrote `key:` or `- ` on the line.
fn write_value(out: &mut String, v: &Value, indent: usize, inline: bool) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(o) if !o.is_empty() => {
            if inline {
                out.push('\n');
            }
            for (k, x) in o {
                out.push_str(&format!("{pad}{}:", key(k)));
                match scalar(x) {
                    Some(s) => out.push_str(&format!(" {s}\n")),
                    None => write_value(out, x, indent + 2, true),
                }
            }
        }
        Value::Array(a) if scalar(v).is_none() => {
            if inline {
                out.push('\n');
            }
            for x in a {
                match scalar(x) {
                    Some(s) => out.push_str(&format!("{pad}- {s}\n")),
                    None => {
                        // A mapping item: first key on the dash line.
                        out.push_str(&format!("{pad}-"));
                        let mut inner = String::new();
                        write_value(&mut inner, x, indent + 2, false);
                        out.push(' ');
                        out.push_str(inner.trim_start());
                    }
                }
            }
        }
        other => {
            let s = scalar(other).expect("scalar");
            if inline {
                out.push_str(&format!(" {s}\n"));
            } else {
                out.push_str(&format!("{pad}{s}\n"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_maps_lists_and_quoting() {
        let v = json!({
            "all": {
                "hosts": { "h-0": { "ansible_host": "10.0.0.1", "port": 7000, "ok": true,
                    "nodes": [ { "id": "s0.0", "port": 7000 }, { "id": "s0.1", "port": 7001 } ],
                    "cmd": [["tc", "qdisc", "add", "dev", "%DEV%", "root", "handle", "1:"]],
                    "empty": [], "none": null } },
                "yes": "a: b # c"
            }
        });
        let y = to_yaml(&v);
        assert_eq!(
            y,
            "---\nall:\n  hosts:\n    h-0:\n      ansible_host: \"10.0.0.1\"\n      cmd:\n        - [\"tc\", \"qdisc\", \"add\", \"dev\", \"%DEV%\", \"root\", \"handle\", \"1:\"]\n      empty: []\n      nodes:\n        - id: \"s0.0\"\n          port: 7000\n        - id: \"s0.1\"\n          port: 7001\n      none: null\n      ok: true\n      port: 7000\n  \"yes\": \"a: b # c\"\n"
        );
    }
}
