//! A small metrics registry and the Prometheus text exposition format (version 0.0.4).
//!
//! The registry lives per isolate (Workers run many isolates; each reports its own counters, and
//! `redge_isolate_start_time_seconds` lets a scraper tell a fresh isolate from a reset counter).
//!
//! Samples are plain `(name, help, labels, value)` calls, so a capability plugs its counters in without
//! knowing this module's types: either the Worker adds to a counter as things happen ([`Registry::add`],
//! [`Registry::observe`]), or, for totals a capability keeps itself, the metrics handler copies them into
//! a snapshot at scrape time with [`Registry::set`].
//!
//! A sample whose name or labels are invalid, or whose family already exists with another type or other
//! buckets, is dropped (never a panic) and counted in `redge_metrics_dropped_samples_total`.

use std::collections::BTreeMap;
use std::fmt::Write;

/// The content type of [`Registry::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Bucket bounds, in seconds, for request and Redis latencies: from 1 ms (a Redis in the same data
/// centre) to 5 s (well past the default 1 s deadline).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (resets with the isolate).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations counted into buckets.
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

type Labels = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq)]
enum Series {
    Value(f64),
    Histogram {
        counts: Vec<u64>,
        sum: f64,
        count: u64,
    },
}

#[derive(Debug, Clone, PartialEq)]
struct Family {
    help: String,
    kind: Kind,
    buckets: Vec<f64>,
    series: BTreeMap<Labels, Series>,
}

/// Metric families by name, rendered in name order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Registry {
    families: BTreeMap<String, Family>,
    dropped: u64,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Adds `delta` (ignored unless finite and not negative) to a counter.
    pub fn add(&mut self, name: &str, help: &str, labels: &[(&str, &str)], delta: f64) {
        if !(delta.is_finite() && delta >= 0.0) {
            self.dropped += 1;
            return;
        }
        if let Some(Series::Value(v)) = self.series(name, help, Kind::Counter, &[], labels) {
            *v += delta;
        }
    }

    /// Sets a counter (a total kept elsewhere) or a gauge to `value`.
    pub fn set(&mut self, kind: Kind, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        if kind == Kind::Histogram {
            self.dropped += 1;
            return;
        }
        if let Some(Series::Value(v)) = self.series(name, help, kind, &[], labels) {
            *v = value;
        }
    }

    /// Counts `value` into a histogram whose bucket upper bounds are `buckets` (ascending; `+Inf` is
    /// implied).
    pub fn observe(
        &mut self,
        name: &str,
        help: &str,
        buckets: &[f64],
        labels: &[(&str, &str)],
        value: f64,
    ) {
        if !value.is_finite() || !buckets.windows(2).all(|w| w[0] < w[1]) {
            self.dropped += 1;
            return;
        }
        if let Some(Series::Histogram { counts, sum, count }) =
            self.series(name, help, Kind::Histogram, buckets, labels)
        {
            for (bound, n) in buckets.iter().zip(counts.iter_mut()) {
                if value <= *bound {
                    *n += 1;
                }
            }
            *sum += value;
            *count += 1;
        }
    }

    /// The series for these labels, created on first use; `None` (and one more dropped sample) when the
    /// name or labels are invalid or the family exists with another type or other buckets.
    fn series(
        &mut self,
        name: &str,
        help: &str,
        kind: Kind,
        buckets: &[f64],
        labels: &[(&str, &str)],
    ) -> Option<&mut Series> {
        let valid = is_metric_name(name)
            && labels.iter().all(|(l, _)| is_label_name(l) && *l != "le")
            && !has_duplicates(labels);
        let family = if valid {
            Some(
                self.families
                    .entry(name.to_owned())
                    .or_insert_with(|| Family {
                        help: help.to_owned(),
                        kind,
                        buckets: buckets.to_vec(),
                        series: BTreeMap::new(),
                    }),
            )
        } else {
            None
        };
        let Some(family) = family.filter(|f| f.kind == kind && f.buckets == buckets) else {
            self.dropped += 1;
            return None;
        };
        let key: Labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Some(family.series.entry(key).or_insert_with(|| match kind {
            Kind::Histogram => Series::Histogram {
                counts: vec![0; buckets.len()],
                sum: 0.0,
                count: 0,
            },
            _ => Series::Value(0.0),
        }))
    }

    /// The text exposition: `# HELP` and `# TYPE` once per family, then one line per sample.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, family) in &self.families {
            let _ = writeln!(out, "# HELP {name} {}", escape_help(&family.help));
            let _ = writeln!(out, "# TYPE {name} {}", family.kind.as_str());
            for (labels, series) in &family.series {
                match series {
                    Series::Value(v) => {
                        let _ = writeln!(out, "{name}{} {}", label_set(labels, None), number(*v));
                    }
                    Series::Histogram { counts, sum, count } => {
                        for (bound, n) in family.buckets.iter().zip(counts) {
                            let le = number(*bound);
                            let _ =
                                writeln!(out, "{name}_bucket{} {n}", label_set(labels, Some(&le)));
                        }
                        let _ = writeln!(
                            out,
                            "{name}_bucket{} {count}",
                            label_set(labels, Some("+Inf"))
                        );
                        let _ = writeln!(
                            out,
                            "{name}_sum{} {}",
                            label_set(labels, None),
                            number(*sum)
                        );
                        let _ = writeln!(out, "{name}_count{} {count}", label_set(labels, None));
                    }
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP redge_metrics_dropped_samples_total Samples refused by the registry (invalid name or labels, or a type clash).\n\
             # TYPE redge_metrics_dropped_samples_total counter\n\
             redge_metrics_dropped_samples_total {}",
            self.dropped
        );
        out
    }
}

/// A registry's counters and histograms as flat fields of a Redis hash, so that every isolate can add
/// its increments to one hash (`HINCRBYFLOAT`) and any isolate can render the deployment's totals from
/// it ([`Registry::from_fields`]).
///
/// A family is described once (`["f",name]` → `{"help","type","buckets"}`, written with `HSET`); each
/// sample is a field `["s",name,labels,part]` whose value adds up across isolates: `part` is `null` for a
/// counter, a bucket's index, `"sum"` or `"count"` for a histogram (its buckets are cumulative already,
/// so sums of them are too). Gauges describe one isolate and are left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields {
    /// Family descriptors: `(field, JSON value)`.
    pub families: Vec<(String, String)>,
    /// Samples: `(field, value)`.
    pub samples: Vec<(String, f64)>,
}

impl Registry {
    /// The counters and histograms as [`Fields`].
    ///
    /// Numbers are written by [`number`] and read by `str::parse`, never by serde's float code: that
    /// would add tens of kilobytes to the wasm.
    pub fn fields(&self) -> Fields {
        // The JSON text is written by hand: building `serde_json::Value`s from tuples and vectors
        // would link serde's value serializer for them, several kilobytes of wasm.
        let text = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned());
        let mut out = Fields::default();
        for (name, family) in &self.families {
            if family.kind == Kind::Gauge {
                continue;
            }
            let buckets: Vec<String> = family
                .buckets
                .iter()
                .map(|b| format!("\"{}\"", number(*b)))
                .collect();
            let descriptor = format!(
                "{{\"help\":{},\"type\":\"{}\",\"buckets\":[{}]}}",
                text(&family.help),
                family.kind.as_str(),
                buckets.join(",")
            );
            out.families
                .push((format!("[\"f\",{}]", text(name)), descriptor));
            for (labels, series) in &family.series {
                let labels: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("[{},{}]", text(k), text(v)))
                    .collect();
                let prefix = format!("[\"s\",{},[{}],", text(name), labels.join(","));
                let field = |part: &str| format!("{prefix}{part}]");
                match series {
                    Series::Value(v) => out.samples.push((field("null"), *v)),
                    Series::Histogram { counts, sum, count } => {
                        for (i, n) in counts.iter().enumerate() {
                            out.samples.push((field(&i.to_string()), *n as f64));
                        }
                        out.samples.push((field("\"sum\""), *sum));
                        out.samples.push((field("\"count\""), *count as f64));
                    }
                }
            }
        }
        out
    }

    /// The registry that `pairs` (a hash's fields and values, as [`Registry::fields`] writes them,
    /// added up) describe. A field or value that does not parse is skipped and counted as dropped.
    pub fn from_fields(pairs: &[(String, String)]) -> Registry {
        use serde_json::Value;
        struct Descriptor {
            help: String,
            kind: Kind,
            buckets: Vec<f64>,
        }
        let parse_descriptor = |value: &str| -> Option<Descriptor> {
            let v: Value = serde_json::from_str(value).ok()?;
            let kind = match v.get("type")?.as_str()? {
                "counter" => Kind::Counter,
                "histogram" => Kind::Histogram,
                _ => return None,
            };
            let buckets = v
                .get("buckets")?
                .as_array()?
                .iter()
                .map(|b| b.as_str()?.parse::<f64>().ok())
                .collect::<Option<Vec<f64>>>()?;
            Some(Descriptor {
                help: v.get("help")?.as_str()?.to_owned(),
                kind,
                buckets,
            })
        };
        let mut registry = Registry::new();
        // Vectors, not maps: a few dozen entries, and every new map type adds kilobytes to the wasm.
        let mut descriptors: Vec<(String, Descriptor)> = Vec::new();
        let mut samples = Vec::new();
        for (field, value) in pairs {
            let key = serde_json::from_str::<Value>(field).ok();
            let parts = key.as_ref().and_then(Value::as_array);
            match parts.map(Vec::as_slice) {
                Some([tag, name]) if tag == "f" => {
                    if let (Some(name), Some(d)) = (name.as_str(), parse_descriptor(value)) {
                        descriptors.retain(|(n, _)| n != name);
                        descriptors.push((name.to_owned(), d));
                    } else {
                        registry.dropped += 1;
                    }
                }
                Some([tag, name, labels, part]) if tag == "s" => {
                    let labels: Option<Labels> = labels.as_array().and_then(|pairs| {
                        pairs
                            .iter()
                            .map(|pair| match pair.as_array().map(Vec::as_slice) {
                                Some([k, v]) => {
                                    Some((k.as_str()?.to_owned(), v.as_str()?.to_owned()))
                                }
                                _ => None,
                            })
                            .collect()
                    });
                    match (name.as_str(), labels, value.trim().parse::<f64>()) {
                        (Some(name), Some(labels), Ok(v)) if v.is_finite() => {
                            samples.push((name.to_owned(), labels, part.clone(), v));
                        }
                        _ => registry.dropped += 1,
                    }
                }
                _ => registry.dropped += 1,
            }
        }
        for (name, labels, part, value) in samples {
            let Some((_, d)) = descriptors.iter().find(|(n, _)| *n == name) else {
                registry.dropped += 1;
                continue;
            };
            let labels: Vec<(&str, &str)> = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            match (d.kind, part) {
                (Kind::Counter, Value::Null) => registry.add(&name, &d.help, &labels, value),
                (Kind::Histogram, part) => {
                    let Some(Series::Histogram { counts, sum, count }) =
                        registry.series(&name, &d.help, Kind::Histogram, &d.buckets, &labels)
                    else {
                        continue;
                    };
                    match part {
                        Value::Number(i) => {
                            if let Some(n) = i.as_u64().and_then(|i| counts.get_mut(i as usize)) {
                                *n += value as u64;
                            }
                        }
                        Value::String(p) if p == "sum" => *sum += value,
                        Value::String(p) if p == "count" => *count += value as u64,
                        _ => registry.dropped += 1,
                    }
                }
                _ => registry.dropped += 1,
            }
        }
        registry
    }

    /// Sets a gauge computed from the counters: the share of lookups answered from the cache (hits,
    /// memory hits, stale and negative entries) among all lookups, per key group. The same rule as
    /// `GroupMetrics::hit_ratio`, applied to the outcome labels of the added-up totals.
    pub fn add_cache_hit_ratio(&mut self) {
        let Some(family) = self.families.get("redge_cache_lookups_total") else {
            return;
        };
        let mut by_group: Vec<(String, (f64, f64))> = Vec::new();
        for (labels, series) in &family.series {
            let Series::Value(v) = series else { continue };
            let label = |k: &str| labels.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            let (Some(group), Some(outcome)) = (label("group"), label("outcome")) else {
                continue;
            };
            let at = by_group
                .iter()
                .position(|(g, _)| g == group)
                .unwrap_or_else(|| {
                    by_group.push((group.to_owned(), (0.0, 0.0)));
                    by_group.len() - 1
                });
            let entry = &mut by_group[at].1;
            if matches!(outcome, "hit" | "memory_hit" | "stale" | "negative") {
                entry.0 += v;
            }
            entry.1 += v;
        }
        for (group, (hits, all)) in by_group {
            if all > 0.0 {
                self.set(
                    Kind::Gauge,
                    "redge_cache_hit_ratio",
                    "Lookups answered from the cache (fresh, stale or negative entries) per lookup.",
                    &[("group", &group)],
                    hits / all,
                );
            }
        }
    }
}

/// What to add to the shared hash since `flushed` (the sample values last sent, sorted by field):
/// every sample that grew, by how much. A sample that shrank (an isolate's counter cannot; a copied
/// total restarted) sends nothing and becomes the new base.
pub fn increments(now: &[(String, f64)], flushed: &[(String, f64)]) -> Vec<(String, f64)> {
    now.iter()
        .filter_map(|(field, value)| {
            let before = flushed
                .binary_search_by(|(f, _)| f.as_str().cmp(field))
                .map_or(0.0, |i| flushed[i].1);
            (*value > before).then(|| (field.clone(), value - before))
        })
        .collect()
}

/// A value for `HINCRBYFLOAT` (the same six-decimal form as the text exposition).
pub fn increment_text(value: f64) -> String {
    number(value)
}

/// Whether a scrape may read the metrics: always without a configured token, otherwise only with
/// `Authorization: Bearer <token>`, compared without an early exit so the time taken does not tell how
/// much of the token was right.
pub fn scrape_allowed(expected: Option<&str>, authorization: Option<&str>) -> bool {
    let Some(expected) = expected else {
        return true;
    };
    let sent = authorization
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("")
        .trim();
    sent.len() == expected.len()
        && sent
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// `{a="1",le="0.5"}`, or nothing without labels.
fn label_set(labels: &Labels, le: Option<&str>) -> String {
    if labels.is_empty() && le.is_none() {
        return String::new();
    }
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    format!("{{{}}}", parts.join(","))
}

/// A sample value: integers without a fraction, `+Inf`, `-Inf`, `NaN`, others with up to six significant
/// decimals (`0.0065`, `1.5e-7`, `2.5e20`).
///
/// Written with integer arithmetic: the standard float formatter adds tens of kilobytes to the wasm, and
/// six decimals are finer than anything the Worker measures (its clock has millisecond resolution).
fn number(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let sign = if v < 0.0 { "-" } else { "" };
    let a = v.abs();
    if a == 0.0 {
        return "0".into();
    }
    if (1e-3..1e15).contains(&a) {
        // Fixed notation, rounded to the microunit; integers print without a fraction.
        let micros = (a * 1e6).round() as u64;
        return format!("{sign}{}", fixed(micros / 1_000_000, micros % 1_000_000));
    }
    // Scientific notation: a mantissa in [1, 10) with six decimals, and the exponent.
    let mut exp = a.log10().floor() as i32;
    let mut micros = (a / 10f64.powi(exp) * 1e6).round() as u64;
    if micros >= 10_000_000 {
        micros /= 10;
        exp += 1;
    }
    format!(
        "{sign}{}e{exp}",
        fixed(micros / 1_000_000, micros % 1_000_000)
    )
}

/// `int.frac` with the fraction's trailing zeros (and a bare point) removed.
fn fixed(int: u64, frac: u64) -> String {
    if frac == 0 {
        return int.to_string();
    }
    let digits = format!("{frac:06}");
    format!("{int}.{}", digits.trim_end_matches('0'))
}

/// Label values escape backslash, double quote and line feed.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Help text escapes backslash and line feed.
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    !name.starts_with("__")
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn has_duplicates(labels: &[(&str, &str)]) -> bool {
    labels
        .iter()
        .enumerate()
        .any(|(i, (a, _))| labels.iter().skip(i + 1).any(|(b, _)| a == b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_help_and_type_once() {
        let mut r = Registry::new();
        let ok = [("route", "/api/health"), ("status", "200")];
        r.add("redge_http_requests_total", "Requests.", &ok, 1.0);
        r.add("redge_http_requests_total", "ignored later help", &ok, 2.0);
        r.add(
            "redge_http_requests_total",
            "",
            &[("route", "/api/health"), ("status", "503")],
            1.0,
        );
        let text = r.render();
        assert!(
            text.starts_with(
                "# HELP redge_http_requests_total Requests.\n\
             # TYPE redge_http_requests_total counter\n\
             redge_http_requests_total{route=\"/api/health\",status=\"200\"} 3\n\
             redge_http_requests_total{route=\"/api/health\",status=\"503\"} 1\n"
            ),
            "{text}"
        );
        assert_eq!(text.matches("# TYPE redge_http_requests_total").count(), 1);
        assert!(text.ends_with("redge_metrics_dropped_samples_total 0\n"));
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut r = Registry::new();
        r.set(
            Kind::Gauge,
            "g",
            "line one\nback\\slash",
            &[("v", "a\"b\\c\nd")],
            1.5,
        );
        let text = r.render();
        assert!(
            text.contains("# HELP g line one\\nback\\\\slash\n"),
            "{text}"
        );
        assert!(text.contains("g{v=\"a\\\"b\\\\c\\nd\"} 1.5\n"), "{text}");
    }

    #[test]
    fn histograms_are_cumulative_with_inf_sum_and_count() {
        let mut r = Registry::new();
        for v in [0.0005, 0.003, 0.003, 7.0] {
            r.observe(
                "lat_seconds",
                "Latency.",
                &[0.001, 0.005],
                &[("route", "/x")],
                v,
            );
        }
        let text = r.render();
        let expected = "# HELP lat_seconds Latency.\n\
            # TYPE lat_seconds histogram\n\
            lat_seconds_bucket{route=\"/x\",le=\"0.001\"} 1\n\
            lat_seconds_bucket{route=\"/x\",le=\"0.005\"} 3\n\
            lat_seconds_bucket{route=\"/x\",le=\"+Inf\"} 4\n\
            lat_seconds_sum{route=\"/x\"} 7.0065\n\
            lat_seconds_count{route=\"/x\"} 4\n";
        assert!(text.starts_with(expected), "{text}");
        let mut bare = Registry::new();
        bare.observe("h", "", &[1.0], &[], 0.5);
        assert!(
            bare.render()
                .contains("h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 0.5\nh_count 1\n")
        );
    }

    #[test]
    fn invalid_samples_are_dropped_and_counted() {
        let mut r = Registry::new();
        r.add("bad name", "", &[], 1.0);
        r.add("ok", "", &[("__reserved", "x")], 1.0);
        r.add("ok", "", &[("a", "1"), ("a", "2")], 1.0);
        r.add("ok", "", &[("le", "1")], 1.0);
        r.add("ok", "", &[], -1.0);
        r.add("ok", "", &[], f64::NAN);
        r.add("ok", "", &[], 1.0);
        r.set(Kind::Gauge, "ok", "", &[], 5.0); // type clash
        r.observe("h", "", &[1.0, 2.0], &[], 1.0);
        r.observe("h", "", &[1.0], &[], 1.0); // other buckets
        r.observe("h2", "", &[2.0, 1.0], &[], 1.0); // unsorted
        let text = r.render();
        assert!(text.contains("\nok 1\n"), "{text}");
        assert!(
            text.contains("redge_metrics_dropped_samples_total 9\n"),
            "{text}"
        );
    }

    #[test]
    fn scrapes_need_the_token_only_when_one_is_configured() {
        assert!(scrape_allowed(None, None));
        assert!(scrape_allowed(None, Some("Bearer anything")));
        assert!(scrape_allowed(Some("s3cret"), Some("Bearer s3cret")));
        for sent in [
            None,
            Some(""),
            Some("Bearer "),
            Some("Bearer s3cre"),
            Some("Bearer s3cret2"),
            Some("s3cret"),
            Some("Basic s3cret"),
        ] {
            assert!(!scrape_allowed(Some("s3cret"), sent), "{sent:?}");
        }
    }

    #[test]
    fn numbers_follow_the_format() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(f64::NEG_INFINITY), "-Inf");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(1e20), "1e20");
        assert_eq!(number(2.5e20), "2.5e20");
        assert_eq!(number(-0.0065), "-0.0065");
        assert_eq!(number(1.5e-7), "1.5e-7");
        assert_eq!(number(9.9999999e-4), "1e-3");
        assert_eq!(number(123456789012.5), "123456789012.5");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(7.0065), "7.0065");
        for v in [1e20, 2.5e20, 1.5e-7, 0.0065, 3.0, 1e15, 99999.999999] {
            let parsed: f64 = number(v).parse().unwrap();
            assert!((parsed - v).abs() <= v.abs() * 1e-6, "{v} -> {}", number(v));
        }
    }

    #[test]
    fn every_line_is_a_comment_or_a_sample() {
        let mut r = Registry::new();
        r.add("a_total", "A.", &[("x", "with space and = sign")], 1.0);
        r.observe("b_seconds", "B.", LATENCY_BUCKETS, &[], 0.02);
        for line in r.render().lines() {
            let ok = line.starts_with("# HELP ")
                || line.starts_with("# TYPE ")
                || line
                    .rsplit_once(' ')
                    .is_some_and(|(_, v)| v.parse::<f64>().is_ok() || v == "+Inf");
            assert!(ok, "{line}");
        }
    }

    /// What a Redis hash holds after each of `isolates` sent its fields: descriptors set, samples
    /// added up.
    fn shared_hash(isolates: &[&Registry]) -> Vec<(String, String)> {
        let mut hash: BTreeMap<String, String> = BTreeMap::new();
        let mut sums: BTreeMap<String, f64> = BTreeMap::new();
        for registry in isolates {
            let fields = registry.fields();
            hash.extend(fields.families);
            for (field, value) in fields.samples {
                *sums.entry(field).or_default() += value;
            }
        }
        hash.extend(sums.into_iter().map(|(f, v)| (f, increment_text(v))));
        hash.into_iter().collect()
    }

    fn load(registry: &mut Registry, route: &str, seconds: &[f64]) {
        for s in seconds {
            registry.add(
                "redge_http_requests_total",
                "Requests.",
                &[("route", route), ("status", "200")],
                1.0,
            );
            registry.observe(
                "redge_http_request_duration_seconds",
                "Latency.",
                LATENCY_BUCKETS,
                &[("route", route)],
                *s,
            );
        }
        registry.set(
            Kind::Gauge,
            "redge_isolate_start_time_seconds",
            "Start.",
            &[],
            17.0,
        );
    }

    #[test]
    fn two_isolates_add_up_to_what_one_would_have_counted() {
        let (mut a, mut b, mut both) = (Registry::new(), Registry::new(), Registry::new());
        load(&mut a, "/api/x", &[0.002, 0.02, 0.3]);
        load(&mut b, "/api/x", &[0.004]);
        load(&mut b, "/api/y \"q\"", &[1.5, 0.0004]);
        load(&mut both, "/api/x", &[0.002, 0.02, 0.3, 0.004]);
        load(&mut both, "/api/y \"q\"", &[1.5, 0.0004]);
        let merged = Registry::from_fields(&shared_hash(&[&a, &b]));
        let mut expected = both.clone();
        // Gauges describe one isolate: not in the shared hash.
        expected.families.remove("redge_isolate_start_time_seconds");
        assert_eq!(merged.render(), expected.render());
        assert!(
            merged
                .render()
                .contains("redge_http_requests_total{route=\"/api/x\",status=\"200\"} 4")
        );
    }

    #[test]
    fn fields_that_do_not_parse_are_counted_not_fatal() {
        let mut a = Registry::new();
        load(&mut a, "/r", &[0.1]);
        let mut hash = shared_hash(&[&a]);
        hash.push(("not json".into(), "1".into()));
        hash.push((r#"["s","unknown_family",[],null]"#.into(), "1".into()));
        hash.push((
            r#"["s","redge_http_requests_total",[],null]"#.into(),
            "abc".into(),
        ));
        let merged = Registry::from_fields(&hash);
        assert_eq!(merged.dropped, 3);
        assert!(
            merged
                .render()
                .contains("redge_http_requests_total{route=\"/r\",status=\"200\"} 1")
        );
    }

    #[test]
    fn increments_send_only_what_grew_since_the_last_flush() {
        let flushed = [("a".to_owned(), 3.0), ("b".to_owned(), 5.0)];
        let now = vec![
            ("a".to_owned(), 7.0),
            ("b".to_owned(), 5.0),
            ("c".to_owned(), 2.5),
        ];
        assert_eq!(
            increments(&now, &flushed),
            [("a".to_owned(), 4.0), ("c".to_owned(), 2.5)]
        );
        // A total that restarted (smaller than what was sent) sends nothing.
        assert!(increments(&[("a".to_owned(), 1.0)], &flushed).is_empty());
    }

    #[test]
    fn the_hit_ratio_counts_every_answer_from_the_cache() {
        let mut r = Registry::new();
        for (outcome, n) in [
            ("hit", 6.0),
            ("memory_hit", 1.0),
            ("stale", 1.0),
            ("negative", 1.0),
            ("miss", 1.0),
        ] {
            r.set(
                Kind::Counter,
                "redge_cache_lookups_total",
                "Lookups.",
                &[("group", "item"), ("outcome", outcome)],
                n,
            );
        }
        r.add_cache_hit_ratio();
        assert!(
            r.render()
                .contains("redge_cache_hit_ratio{group=\"item\"} 0.9\n"),
            "{}",
            r.render()
        );
    }
}
