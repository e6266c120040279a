//! JSON log lines: `{"timestamp", "level", "message", <fields>..., "target"}`. A field recorded
//! as a list (`critical = ?names`) is written as a JSON array, not as the text of one, and the
//! emoji of the text lines ("✅", "⚠️") are left out: JSON logs are read by programs.

use std::fmt;

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        writeln!(writer, "{}", line(event))
    }
}

fn line(event: &Event<'_>) -> Value {
    let mut map = Map::new();
    let now = time::OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default();
    map.insert("timestamp".into(), now.into());
    map.insert("level".into(), event.metadata().level().as_str().into());
    event.record(&mut Fields(&mut map));
    map.insert("target".into(), event.metadata().target().into());
    Value::Object(map)
}

struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().into(), without_emoji(value).into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        self.0.insert(field.name().into(), debug_value(&text));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
}

/// A `Debug` rendering: a list (`["a", "b"]`, `[1, 2]`) becomes a JSON array; anything else is
/// its text.
fn debug_value(text: &str) -> Value {
    if text.starts_with('[') {
        if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(text) {
            return Value::Array(
                items
                    .into_iter()
                    .map(|v| match v {
                        Value::String(s) => without_emoji(&s).into(),
                        other => other,
                    })
                    .collect(),
            );
        }
    }
    without_emoji(text).into()
}

/// Pictographs, dingbats and their variation selectors; ASCII and text stay.
fn is_emoji(c: char) -> bool {
    matches!(c as u32,
        0x2139 | 0x2190..=0x21FF | 0x2300..=0x23FF | 0x2460..=0x27BF | 0x2900..=0x2BFF
        | 0x1F000..=0x1FAFF | 0xFE0F | 0x200D)
}

fn without_emoji(s: &str) -> String {
    if !s.chars().any(is_emoji) {
        return s.to_string();
    }
    let kept: String = s.chars().filter(|c| !is_emoji(*c)).collect();
    kept.split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_arrays_and_emoji_are_left_out() {
        assert_eq!(
            debug_value(r#"["time_wait_sockets", "port_exhaustion"]"#),
            serde_json::json!(["time_wait_sockets", "port_exhaustion"])
        );
        assert_eq!(debug_value("[8000, 8001]"), serde_json::json!([8000, 8001]));
        assert_eq!(debug_value("Some(3)"), serde_json::json!("Some(3)"));
        assert_eq!(
            without_emoji("[PORT-MANAGER] ✅ Allocated port 8000 for web"),
            "[PORT-MANAGER] Allocated port 8000 for web"
        );
        assert_eq!(without_emoji("⚠️  warning: x"), "warning: x");
        assert_eq!(without_emoji("plain -> text"), "plain -> text");
    }
}
