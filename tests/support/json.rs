// JSON written the way no serializer writes it, to check that reading does not depend on
// how a body is written. Shared by the property tests.

use serde_json::Value;

/// `value` as JSON with every ASCII letter of its keys and strings written as a `\u` escape.
/// `odd` also reverses the members of every object and spreads whitespace around the
/// punctuation.
pub fn escape_letters(value: &Value, odd: bool) -> String {
    fn string(s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            if c.is_ascii_alphabetic() {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            } else {
                let one = serde_json::to_string(&c.to_string()).unwrap();
                out.push_str(&one[1..one.len() - 1]);
            }
        }
        out.push('"');
    }
    fn walk(v: &Value, odd: bool, out: &mut String) {
        let (open_array, comma, open_object, colon, close_object) = if odd {
            ("[ ", " ,\n", "{\t", " : ", " }")
        } else {
            ("[", ",", "{", ":", "}")
        };
        match v {
            Value::String(s) => string(s, out),
            Value::Array(items) => {
                out.push_str(open_array);
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(comma);
                    }
                    walk(item, odd, out);
                }
                out.push(']');
            }
            Value::Object(members) => {
                out.push_str(open_object);
                let mut members: Vec<_> = members.iter().collect();
                if odd {
                    members.reverse();
                }
                for (i, (k, item)) in members.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    string(k, out);
                    out.push_str(colon);
                    walk(item, odd, out);
                }
                out.push_str(close_object);
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    walk(value, odd, &mut out);
    out
}
