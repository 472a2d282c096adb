//! The rollout picture: failed requests and rollout wall time per scenario (median of the
//! repeated runs, min–max as a line), one bar per request delay. PNG through plotters' bitmap
//! backend; text with ab_glyph and the DejaVu font of Debian's fonts-dejavu-core (no font-kit,
//! no fontconfig), read at run time.

use std::path::Path;

use plotters::prelude::*;

use super::report::{grouped, median, Measurement};

/// A measure to plot: its title and how to read it from one run.
type Measure = (&'static str, fn(&Measurement) -> f64);

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const COLORS: [RGBColor; 3] = [RGBColor(31, 119, 180), RGBColor(214, 39, 40), GREEN];

/// Writes the PNG to `path`.
pub fn draw(runs: &[Measurement], path: &Path) -> Result<(), String> {
    let font = std::fs::read(FONT)
        .map_err(|e| format!("{FONT}: {e} (apt-get install fonts-dejavu-core)"))?;
    let font: &'static [u8] = Box::leak(font.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, font)
        .map_err(|_| format!("{FONT} is not a font"))?;
    let groups = grouped(runs);
    let names: Vec<String> = groups
        .values()
        .next()
        .map(|rows| rows.iter().map(|(n, _)| n.clone()).collect())
        .unwrap_or_default();
    let delays: Vec<u64> = groups.keys().copied().collect();
    let root = BitMapBackend::new(path, (1400, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let legend = delays
        .iter()
        .enumerate()
        .map(|(i, d)| format!("{} = {d} ms requests", ["blue", "red", "green"][i % 3]))
        .collect::<Vec<_>>()
        .join(", ");
    let root = root
        .titled(
            &format!("Rollout scenarios ({legend}); bar = median, line = min–max"),
            ("sans-serif", 22),
        )
        .map_err(|e| e.to_string())?;
    let (left, right) = root.split_horizontally(700);
    let measures: [Measure; 2] = [
        ("failed requests", |m| m.failed as f64),
        ("rollout wall time (s)", |m| m.wall.as_secs_f64()),
    ];
    for (area, (title, value)) in [left, right].into_iter().zip(measures) {
        let mut bars = Vec::new();
        for (d, rows) in groups.values().enumerate() {
            for (s, (_, list)) in rows.iter().enumerate() {
                let mut v: Vec<f64> = list.iter().map(|m| value(m)).collect();
                v.sort_by(|a, b| a.total_cmp(b));
                let width = 0.8 / delays.len() as f64;
                let x0 = s as f64 + 0.1 + d as f64 * width;
                bars.push((
                    x0,
                    x0 + width,
                    median(&v),
                    v[0],
                    v[v.len() - 1],
                    COLORS[d % 3],
                ));
            }
        }
        let top = bars.iter().map(|b| b.4).fold(1.0, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(&area)
            .caption(title, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..names.len() as f64, 0f64..top)
            .map_err(|e| e.to_string())?;
        let label = |x: &f64| {
            let i = x.floor() as usize;
            match names.get(i) {
                Some(n) if (x - x.floor() - 0.5).abs() < 0.01 => axis_label(n),
                _ => String::new(),
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(names.len() * 2 + 1)
            .x_label_formatter(&label)
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                bars.iter().map(|b| {
                    Rectangle::new([(b.0, 0.0), (b.1, b.2.max(top * 0.003))], b.5.filled())
                }),
            )
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(bars.iter().map(|b| {
                let x = (b.0 + b.1) / 2.0;
                PathElement::new(vec![(x, b.3), (x, b.4)], BLACK.stroke_width(2))
            }))
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

/// "4c haproxy-drain roll --surge" → "4c --surge", "6 engine only: …" → "6 engine": the
/// scenario's number and its flag, else its first word (whole names overlap under the bars).
fn axis_label(name: &str) -> String {
    let (number, rest) = name.split_once(' ').unwrap_or((name, ""));
    let rest = rest.split([':', ',', '(']).next().unwrap_or_default();
    let words: Vec<&str> = rest
        .split_whitespace()
        .filter(|w| *w != "haproxy-drain")
        .collect();
    let word = match words.last() {
        Some(flag) if flag.starts_with("--") => flag,
        _ => words.first().unwrap_or(&""),
    };
    format!("{number} {word}")
}
