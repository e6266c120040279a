//! A request body that does not fit its request, said in users' words: which field, and the rule
//! it breaks (serde's own text names Rust types: "expected u64", "struct AllocateBody").

/// The field to blame and the rule, for a JSON body that failed to deserialize at `path`.
pub fn explain(path: &str, err: &serde_json::Error) -> (String, String) {
    if !err.is_data() {
        let at = format!("line {} column {}", err.line(), err.column());
        let what = if err.is_eof() {
            "it ends too early"
        } else {
            "it is not valid JSON"
        };
        return (
            "body".into(),
            format!("the body cannot be read: {what} ({at})"),
        );
    }
    let text = err.to_string();
    // serde appends the position; for a shape error the field says where.
    let text = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(head, _)| head);
    let field = if path.is_empty() || path == "." {
        "body".to_string()
    } else {
        path.to_string()
    };
    if let Some(name) = between(text, "missing field `", "`") {
        return (name.to_string(), "is required".into());
    }
    if let Some(name) = between(text, "unknown field `", "`") {
        let known = text
            .split_once("expected one of ")
            .or_else(|| text.split_once("expected "))
            .map(|(_, list)| list.replace('`', ""))
            .unwrap_or_default();
        let rule = if known.is_empty() {
            format!("'{name}' is not a field of this request")
        } else {
            format!("'{name}' is not a field of this request (the fields are {known})")
        };
        // The path already ends with the unknown field when it is inside the body.
        let field = if field == "body" {
            name.to_string()
        } else {
            field
        };
        return (field, rule);
    }
    if let Some(value) = between(text, "unknown variant `", "`") {
        let known = text
            .split_once("expected one of ")
            .or_else(|| text.split_once("expected "))
            .map(|(_, list)| list.replace('`', ""))
            .unwrap_or_default();
        return (field, format!("'{value}' is not one of {known}"));
    }
    let wanted = text
        .rsplit_once(", expected ")
        .map(|(_, w)| w)
        .unwrap_or_default();
    let rule = if field == "body" {
        "the body must be a JSON object".to_string()
    } else {
        match expected_kind(wanted) {
            Some(kind) => format!("must be {kind}"),
            None => format!("does not fit this field ({text})"),
        }
    };
    (field, rule)
}

/// What a Rust type is called in users' words.
fn expected_kind(wanted: &str) -> Option<&'static str> {
    Some(match wanted {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "a boolean" => "true or false",
        "a string" => "text (a JSON string)",
        "a map" => "an object of text values",
        w if w.starts_with("struct ") => "a JSON object",
        w if w.starts_with("a sequence") => "a list",
        w if w.contains("variant") => "one of the listed names",
        _ => return None,
    })
}

/// The text between `start` and the next `end` in `s`.
fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = &s[s.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

#[cfg(test)]
mod tests {
    use super::explain;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        service: String,
        ttl_seconds: Option<u64>,
        pool: Option<Pool>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Pool {
        Service,
        Test,
    }

    fn why(json: &str) -> (String, String) {
        let de = &mut serde_json::Deserializer::from_str(json);
        let e = serde_path_to_error::deserialize::<_, Body>(de).unwrap_err();
        explain(&e.path().to_string(), e.inner())
    }

    #[test]
    fn body_errors_name_the_field_and_the_rule_without_rust_types() {
        let cases = [
            (r#"{"service":"a","ttl_seconds":"x"}"#, "ttl_seconds", "must be a whole number, 0 or more"),
            (r#"{"service":"a","ttl_seconds":-1}"#, "ttl_seconds", "must be a whole number, 0 or more"),
            (r#"{"service":"a","pool":"tests"}"#, "pool", "'tests' is not one of service or test"),
            (r#"{"ttl_seconds":5}"#, "service", "is required"),
            (r#"{"service":"a","color":1}"#, "color", "'color' is not a field of this request (the fields are service, ttl_seconds, pool)"),
            (r#"{"service":"#, "body", "the body cannot be read: it ends too early (line 1 column 11)"),
        ];
        for (json, field, rule) in cases {
            let (f, r) = why(json);
            assert_eq!((f.as_str(), r.as_str()), (field, rule), "{json}");
            for rust in ["u64", "struct ", "Body", "variant"] {
                assert!(!r.contains(rust), "{json}: {r}");
            }
        }
    }
}
