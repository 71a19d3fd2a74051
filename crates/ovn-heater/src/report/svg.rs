//! Inline SVG charts for the HTML report, drawn here so the report needs no JavaScript library
//! and no network: bars per iteration, a histogram, and lines over time.
//!
//! Every chart is an `<svg class="chart" data-kind="...">` with a `<title>`, axes with "nice"
//! ticks and, for lines, a legend. Sizes are in viewBox units; the page scales them.
//!
//! Must not know: what is being plotted beyond numbers and labels.

use std::fmt::Write as _;

const W: f64 = 720.0;
const H: f64 = 260.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 40.0;

/// Colors for line series, cycled.
const PALETTE: &[&str] = &[
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
];

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Round tick positions covering `[0, max]`: steps of 1, 2 or 5 × 10^k, about `n` of them.
pub fn nice_ticks(max: f64, n: usize) -> Vec<f64> {
    if !(max > 0.0 && max.is_finite()) {
        return vec![0.0, 1.0];
    }
    let raw = max / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let count = (max / step).ceil() as usize;
    (0..=count).map(|i| i as f64 * step).collect()
}

/// A number short enough for an axis label.
pub fn fmt_num(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let a = x.abs();
    if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 0.1 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

struct Frame {
    out: String,
    x_max: f64,
    y_max: f64,
}

impl Frame {
    fn new(kind: &str, title: &str, x_label: &str, y_label: &str, x_max: f64, y_max: f64) -> Self {
        let y_ticks = nice_ticks(y_max, 5);
        let y_max = *y_ticks.last().unwrap_or(&1.0);
        let mut out = String::new();
        let _ = write!(
            out,
            r#"<svg class="chart" data-kind="{kind}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img"><title>{t}</title><text x="{tx}" y="18" class="ct">{t}</text>"#,
            t = escape(title),
            tx = W / 2.0
        );
        let frame = Frame { out, x_max, y_max };
        let mut f = frame;
        for t in &y_ticks {
            let y = f.y(*t);
            let _ = write!(
                f.out,
                r#"<line x1="{LEFT}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" class="grid"/><text x="{lx}" y="{ly:.1}" class="yt">{v}</text>"#,
                x2 = W - RIGHT,
                lx = LEFT - 6.0,
                ly = y + 4.0,
                v = fmt_num(*t)
            );
        }
        let _ = write!(
            f.out,
            r#"<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{yb}" class="axis"/><line x1="{LEFT}" x2="{xr}" y1="{yb}" y2="{yb}" class="axis"/><text x="{xl}" y="{H}" dy="-6" class="xl">{xlab}</text><text transform="translate(14 {ym}) rotate(-90)" class="yl">{ylab}</text>"#,
            yb = H - BOTTOM,
            xr = W - RIGHT,
            xl = LEFT + (W - LEFT - RIGHT) / 2.0,
            ym = TOP + (H - TOP - BOTTOM) / 2.0,
            xlab = escape(x_label),
            ylab = escape(y_label)
        );
        f
    }
    fn x(&self, v: f64) -> f64 {
        LEFT + (W - LEFT - RIGHT) * if self.x_max > 0.0 { v / self.x_max } else { 0.0 }
    }
    fn y(&self, v: f64) -> f64 {
        (H - BOTTOM) - (H - TOP - BOTTOM) * if self.y_max > 0.0 { v / self.y_max } else { 0.0 }
    }
    fn x_ticks(&mut self, ticks: &[f64], offset: f64) {
        for t in ticks {
            let x = self.x(*t + offset);
            let _ = write!(
                self.out,
                r#"<text x="{x:.1}" y="{y}" class="xt">{v}</text>"#,
                y = H - BOTTOM + 14.0,
                v = fmt_num(*t)
            );
        }
    }
    fn finish(mut self) -> String {
        self.out.push_str("</svg>");
        self.out
    }
}

/// One bar per iteration (x = iteration, y = seconds); failed iterations are drawn in red at
/// the time they took to fail.
pub fn iteration_bars(title: &str, y_label: &str, values: &[(f64, bool)]) -> String {
    let n = values.len();
    let y_max = values.iter().map(|v| v.0).fold(0.0, f64::max);
    let mut f = Frame::new("bars", title, "iteration", y_label, n as f64, y_max);
    let slot = (W - LEFT - RIGHT) / n.max(1) as f64;
    let width = (slot * 0.8).max(0.5);
    for (i, (v, failed)) in values.iter().enumerate() {
        let x = f.x(i as f64) + (slot - width) / 2.0;
        let y = f.y(*v);
        let class = if *failed { "bar failed" } else { "bar" };
        let _ = write!(
            f.out,
            r#"<rect x="{x:.2}" y="{y:.2}" width="{width:.2}" height="{h:.2}" class="{class}"><title>#{i}: {v:.4} s{fail}</title></rect>"#,
            h = (H - BOTTOM - y).max(0.0),
            fail = if *failed { " (failed)" } else { "" }
        );
    }
    // Iterations are whole numbers: no tick between two bars.
    let ticks: Vec<f64> = nice_ticks(n.saturating_sub(1) as f64, 8)
        .into_iter()
        .filter(|t| *t < n as f64 && t.fract() == 0.0)
        .collect();
    f.x_ticks(&ticks, 0.5);
    f.finish()
}

/// Distribution of `values` in `bins` equal-width bins.
pub fn histogram(title: &str, x_label: &str, values: &[f64], bins: usize) -> String {
    let bins = bins.max(1);
    let mut max = values.iter().copied().fold(0.0, f64::max);
    let mut min = values.iter().copied().fold(f64::INFINITY, f64::min).min(max);
    if max <= min {
        // All equal: a narrow window around the value, so the bar sits in the middle.
        let half = (min.abs() * 0.1).max(1e-3);
        (min, max) = (min - half, max + half);
    }
    let width = (max - min) / bins as f64;
    let mut counts = vec![0usize; bins];
    for v in values {
        let i = (((v - min) / width) as usize).min(bins - 1);
        counts[i] += 1;
    }
    let y_max = counts.iter().copied().max().unwrap_or(0) as f64;
    let mut f = Frame::new("histogram", title, x_label, "count", bins as f64, y_max.max(1.0));
    let slot = (W - LEFT - RIGHT) / bins as f64;
    for (i, c) in counts.iter().enumerate() {
        let x = f.x(i as f64) + 1.0;
        let y = f.y(*c as f64);
        let lo = min + width * i as f64;
        let _ = write!(
            f.out,
            r#"<rect x="{x:.2}" y="{y:.2}" width="{w:.2}" height="{h:.2}" class="bar"><title>{lo:.4}–{hi:.4} s: {c}</title></rect>"#,
            w = (slot - 2.0).max(0.5),
            h = (H - BOTTOM - y).max(0.0),
            hi = lo + width
        );
    }
    for i in (0..=bins).step_by((bins / 5).max(1)) {
        let x = f.x(i as f64);
        let _ = write!(
            f.out,
            r#"<text x="{x:.1}" y="{y}" class="xt">{v}</text>"#,
            y = H - BOTTOM + 14.0,
            v = fmt_num(min + width * i as f64)
        );
    }
    f.finish()
}

/// Lines over time: each series is `(name, [(t, y)])`.
pub fn time_lines(title: &str, y_label: &str, series: &[(String, Vec<(f64, f64)>)]) -> String {
    let x_max = series
        .iter()
        .flat_map(|(_, pts)| pts.iter().map(|p| p.0))
        .fold(0.0, f64::max);
    let y_max = series
        .iter()
        .flat_map(|(_, pts)| pts.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let x_ticks = nice_ticks(x_max, 8);
    let x_max = *x_ticks.last().unwrap_or(&1.0);
    let mut f = Frame::new("lines", title, "time (s)", y_label, x_max, y_max);
    for (i, (name, pts)) in series.iter().enumerate() {
        if pts.is_empty() {
            continue;
        }
        let color = PALETTE[i % PALETTE.len()];
        let mut d = String::new();
        for (j, (t, y)) in pts.iter().enumerate() {
            let _ = write!(d, "{}{:.1},{:.1}", if j == 0 { "M" } else { " L" }, f.x(*t), f.y(*y));
        }
        let _ = write!(
            f.out,
            r#"<path d="{d}" class="line" stroke="{color}"><title>{n}</title></path>"#,
            n = escape(name)
        );
    }
    f.x_ticks(&x_ticks, 0.0);
    // Legend below the title, left to right, wrapped.
    let (mut lx, mut ly) = (LEFT + 8.0, TOP + 8.0);
    for (i, (name, _)) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let label = escape(name);
        let width = 18.0 + 6.5 * name.chars().count() as f64;
        if lx + width > W - RIGHT {
            lx = LEFT + 8.0;
            ly += 12.0;
        }
        let _ = write!(
            f.out,
            r#"<rect x="{lx:.1}" y="{ry:.1}" width="10" height="3" fill="{color}"/><text x="{tx:.1}" y="{ly:.1}" class="lg">{label}</text>"#,
            ry = ly - 4.0,
            tx = lx + 13.0
        );
        lx += width;
    }
    f.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_max() {
        assert_eq!(nice_ticks(0.9, 5), vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
        let t = nice_ticks(47.0, 5);
        assert_eq!(t.last().copied(), Some(50.0));
        assert_eq!(nice_ticks(0.0, 5), vec![0.0, 1.0]);
    }

    #[test]
    fn charts_are_wellformed_svg_with_titles() {
        for svg in [
            iteration_bars("port up <vms>", "s", &[(0.1, false), (0.3, true), (0.2, false)]),
            histogram("dist", "s", &[0.1, 0.2, 0.2, 0.9], 10),
            time_lines(
                "cpu",
                "%",
                &[("northd".into(), vec![(0.0, 1.0), (0.5, 30.0)]), ("nb".into(), vec![])],
            ),
            iteration_bars("empty", "s", &[]),
            histogram("empty", "s", &[], 10),
        ] {
            assert!(svg.starts_with("<svg class=\"chart\""), "{svg}");
            assert!(svg.ends_with("</svg>"));
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
            assert_eq!(svg.matches("<svg").count(), 1);
        }
        let bars = iteration_bars("t", "s", &[(0.1, false), (0.3, true)]);
        assert_eq!(bars.matches("<rect").count(), 2);
        assert!(bars.contains("bar failed"));
        assert!(iteration_bars("a<b", "s", &[]).contains("a&lt;b"));
    }
}
