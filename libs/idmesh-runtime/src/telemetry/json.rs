//! JSON log lines with the trace id of the request they belong to.
//!
//! OpenTelemetry keeps a span's trace id in data private to
//! `tracing-opentelemetry`, and a log formatter cannot ask the subscriber
//! for it while the subscriber is busy with the event. So
//! [`TraceIdsLayer`] copies the ids into each span's extensions when the
//! span is first entered (after its parent was set from a `traceparent`),
//! and [`JsonLines`] reads them from there.

use std::fmt;
use std::sync::OnceLock;

use opentelemetry::trace::TraceContextExt;
use serde_json::{Map, Value};
use tracing::dispatcher::WeakDispatch;
use tracing::field::{Field, Visit};
use tracing::span::Id;
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// A span's OpenTelemetry ids, in the W3C hex form.
#[derive(Debug, Clone)]
struct TraceIds {
    trace_id: String,
    span_id: String,
}

/// Records each span's [`TraceIds`] in its extensions on first entry.
#[derive(Debug, Default)]
pub(super) struct TraceIdsLayer {
    dispatch: OnceLock<WeakDispatch>,
}

impl<S> tracing_subscriber::Layer<S> for TraceIdsLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, dispatch: &Dispatch) {
        let _ = self.dispatch.set(dispatch.downgrade());
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if span.extensions().get::<TraceIds>().is_some() {
            return;
        }
        let Some(dispatch) = self.dispatch.get().and_then(WeakDispatch::upgrade) else {
            return;
        };
        // Not while holding the span's extensions: this locks them itself.
        let Some(context) = tracing_opentelemetry::get_otel_context(id, &dispatch) else {
            return;
        };
        let otel_span = context.span();
        let ids = otel_span.span_context();
        if ids.is_valid() {
            span.extensions_mut().insert(TraceIds {
                trace_id: ids.trace_id().to_string(),
                span_id: ids.span_id().to_string(),
            });
        }
    }
}

/// One JSON object per event: `timestamp`, `level`, `target`, `message`
/// and the event's other fields, `spans` (the names of the spans it
/// happened in, outermost first) and, inside a traced request, `trace_id`
/// and `span_id`.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let metadata = event.metadata();
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let mut line = Map::new();
        line.insert("timestamp".to_owned(), Value::String(timestamp));
        line.insert("level".to_owned(), Value::String(metadata.level().to_string()));
        line.insert("target".to_owned(), Value::String(metadata.target().to_owned()));
        event.record(&mut Fields(&mut line));
        if let Some(scope) = ctx.event_scope() {
            let mut spans = Vec::new();
            let mut ids = None;
            for span in scope {
                spans.push(Value::String(span.name().to_owned()));
                if ids.is_none() {
                    ids = span.extensions().get::<TraceIds>().cloned();
                }
            }
            spans.reverse();
            line.insert("spans".to_owned(), Value::Array(spans));
            if let Some(ids) = ids {
                line.insert("trace_id".to_owned(), Value::String(ids.trace_id));
                line.insert("span_id".to_owned(), Value::String(ids.span_id));
            }
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// How the JSON lines' layer writes down a span's fields: not at all. A
/// line names its spans and carries their trace ids, never their fields,
/// while the default would format every field of every span as text when
/// the span opens, whether or not a line is ever written inside it: about
/// 5 % of the instructions of a GET (docs/benchmarks.md).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSpanFields;

impl<'writer> FormatFields<'writer> for NoSpanFields {
    fn format_fields<R: RecordFields>(&self, _writer: Writer<'writer>, _fields: R) -> fmt::Result {
        Ok(())
    }
}

/// Copies an event's fields into the line, numbers and booleans as such.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::String(value.to_owned()));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::Bool(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }
}
