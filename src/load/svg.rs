//! Line charts as inline SVG, generated here so that the HTML report is one
//! self-contained file (no script, no network). Axes with "nice" ticks and
//! units, light grid, a legend, optional custom x ticks (the latency
//! distribution's percentile axis).

use std::fmt::Write;

/// Chart width, px.
const WIDTH: f64 = 1100.0;
/// Chart height, px.
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 52.0;

/// One line.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// CSS colour.
    pub color: &'static str,
    /// (x, y) points in data units, x ascending.
    pub points: Vec<(f64, f64)>,
}

/// A chart's texts and data.
#[derive(Clone, Debug, Default)]
pub struct Chart {
    /// Title above the plot.
    pub title: String,
    /// x axis label, with unit.
    pub x_label: String,
    /// y axis label, with unit.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// Fixed x ticks (value, label) instead of computed ones.
    pub x_ticks: Option<Vec<(f64, String)>>,
    /// Fixed x range instead of the data's (aligns charts of one run).
    pub x_range: Option<(f64, f64)>,
}

/// Escapes text for SVG/HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A step of 1, 2 or 5 × 10^n giving about `count` ticks over `range`.
pub fn nice_step(range: f64, count: f64) -> f64 {
    if range <= 0.0 || !range.is_finite() {
        return 1.0;
    }
    let raw = range / count;
    let magnitude = 10f64.powf(raw.log10().floor());
    let f = raw / magnitude;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

fn tick_label(v: f64, step: f64) -> String {
    if step >= 1.0 {
        format!("{v:.0}")
    } else {
        let decimals = (-step.log10().floor()) as usize;
        format!("{v:.decimals$}")
    }
}

/// Renders `chart` as an `<svg>` element.
pub fn line_chart(chart: &Chart) -> String {
    let points = chart.series.iter().flat_map(|s| s.points.iter());
    let (mut x_min, mut x_max, mut y_max) = (f64::MAX, f64::MIN, 0.0f64);
    for &(x, y) in points.filter(|(x, y)| x.is_finite() && y.is_finite()) {
        x_min = x_min.min(x);
        x_max = x_max.max(x);
        y_max = y_max.max(y);
    }
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" font-family="system-ui, sans-serif" font-size="13">"#
    );
    let _ = write!(
        out,
        r##"<text x="{LEFT}" y="22" font-size="16" font-weight="600" fill="#222">{}</text>"##,
        escape(&chart.title)
    );
    if x_min > x_max {
        let _ = write!(
            out,
            r##"<text x="{}" y="{}" fill="#777">no data</text></svg>"##,
            WIDTH / 2.0 - 30.0,
            HEIGHT / 2.0
        );
        return out;
    }
    if let Some((lo, hi)) = chart.x_range {
        x_min = lo;
        x_max = hi;
    }
    if x_max <= x_min {
        x_max = x_min + 1.0;
    }
    let y_step = nice_step(if y_max > 0.0 { y_max } else { 1.0 }, 5.0);
    let y_top = ((y_max / y_step).ceil() * y_step).max(y_step);
    let (pw, ph) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let sx = |x: f64| LEFT + (x - x_min) / (x_max - x_min) * pw;
    let sy = |y: f64| TOP + ph - (y / y_top) * ph;
    // Grid and y ticks.
    let mut y = 0.0;
    while y <= y_top + y_step * 0.01 {
        let py = sy(y);
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{py:.1}" y2="{py:.1}" stroke="#e3e3e3"/><text x="{}" y="{:.1}" text-anchor="end" fill="#444">{}</text>"##,
            LEFT + pw,
            LEFT - 8.0,
            py + 4.0,
            tick_label(y, y_step)
        );
        y += y_step;
    }
    // x ticks.
    let x_ticks: Vec<(f64, String)> = match &chart.x_ticks {
        Some(t) => t.clone(),
        None => {
            let step = nice_step(x_max - x_min, 10.0);
            let first = (x_min / step).ceil() * step;
            let count = ((x_max - first) / step).floor() as usize;
            (0..=count)
                .map(|i| first + i as f64 * step)
                .map(|v| (v, tick_label(v, step)))
                .collect()
        }
    };
    for (v, label) in x_ticks.iter().filter(|(v, _)| *v >= x_min && *v <= x_max) {
        let px = sx(*v);
        let _ = write!(
            out,
            r##"<line x1="{px:.1}" x2="{px:.1}" y1="{TOP}" y2="{}" stroke="#eeeeee"/><text x="{px:.1}" y="{}" text-anchor="middle" fill="#444">{}</text>"##,
            TOP + ph,
            TOP + ph + 18.0,
            escape(label)
        );
    }
    // Axes and labels.
    let _ = write!(
        out,
        r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#999"/><text x="{}" y="{}" text-anchor="middle" fill="#222">{}</text><text transform="translate(18 {}) rotate(-90)" text-anchor="middle" fill="#222">{}</text>"##,
        LEFT + pw / 2.0,
        HEIGHT - 10.0,
        escape(&chart.x_label),
        TOP + ph / 2.0,
        escape(&chart.y_label)
    );
    // Lines.
    for s in &chart.series {
        let path: Vec<String> = s
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        if path.len() == 1 {
            let _ = write!(
                out,
                r#"<circle cx="{}" r="3" fill="{}"/>"#,
                path[0].replace(',', "\" cy=\""),
                s.color
            );
        }
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" stroke-linejoin="round" points="{}"/>"#,
            s.color,
            path.join(" ")
        );
    }
    // Legend, right-aligned above the plot.
    let mut lx = LEFT + pw;
    for s in chart.series.iter().rev() {
        let w = 28.0 + 7.5 * s.name.chars().count() as f64;
        lx -= w;
        let _ = write!(
            out,
            r##"<rect x="{lx:.1}" y="14" width="14" height="4" fill="{}"/><text x="{:.1}" y="21" fill="#333">{}</text>"##,
            s.color,
            lx + 19.0,
            escape(&s.name)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(10.0, 5.0), 2.0);
        assert_eq!(nice_step(100.0, 10.0), 10.0);
        assert_eq!(nice_step(0.7, 5.0), 0.2);
    }

    #[test]
    fn draws_lines_labels_and_escapes() {
        let svg = line_chart(&Chart {
            title: "a < b".into(),
            x_label: "time (s)".into(),
            y_label: "latency (ms)".into(),
            series: vec![Series {
                name: "p99".into(),
                color: "#c00",
                points: vec![(0.0, 1.0), (1.0, 2.0)],
            }],
            x_ticks: None,
            x_range: None,
        });
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("<polyline"));
        assert!(svg.contains("a &lt; b"));
        assert!(svg.contains("latency (ms)"));
        assert!(svg.ends_with("</svg>"));
        assert!(line_chart(&Chart::default()).contains("no data"));
    }
}
