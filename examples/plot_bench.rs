//! Turns `ringshm bench --json` output into an SVG chart of round-trip
//! latency by message size (log-log), one line per transport, with the floor
//! (bare atomic ping-pong) as a dashed line.
//!
//! ```sh
//! cargo run --release -- bench --json > bench.json
//! cargo run --release --example plot_bench -- bench.json bench.svg
//! ```
//!
//! Fails (exit status 1) if the JSON lacks a row (round trip or stream)
//! for any transport and size, or has a figure that is not positive.

use plotters::prelude::*;
use serde_json::Value;

const TRANSPORTS: [&str; 6] = ["spsc::Ring", "Pipe", "Queue", "unix pipe", "socketpair", "POSIX mq"];
const SIZES: [u64; 4] = [8, 64, 4096, 65536];
const COLORS: [RGBColor; 6] = [
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        return Err("usage: plot_bench BENCH.json OUT.svg (from `ringshm bench --json`)".into());
    };
    if !output.ends_with(".svg") {
        return Err(format!("{output}: only SVG output is supported; name the file *.svg").into());
    }
    let text = std::fs::read_to_string(input).map_err(|e| format!("{input}: {e}"))?;
    let v: Value =
        serde_json::from_str(&text).map_err(|e| format!("{input} is not `ringshm bench --json` output: {e}"))?;
    let rows = v["rows"].as_array().ok_or_else(|| format!("{input}: no \"rows\" array"))?;
    let figure = |mode: &str, t: &str, size: u64, key: &str| -> Result<f64, String> {
        let r = rows
            .iter()
            .find(|r| r["mode"] == mode && r["transport"] == t && r["bytes"] == size)
            .ok_or_else(|| format!("{input}: no {mode} row for {t}, {size} B"))?;
        match r[key].as_f64() {
            Some(x) if x.is_finite() && x > 0.0 => Ok(x),
            _ => Err(format!("{input}: {mode} {t} {size} B: {key} is not a positive number")),
        }
    };
    // Every row of both modes must be there (CI runs this on `--quick` output).
    for mode in ["round_trip", "stream"] {
        for t in TRANSPORTS {
            for s in SIZES {
                figure(mode, t, s, "ns")?;
            }
        }
    }
    let mut lines = Vec::new();
    for t in TRANSPORTS {
        let pts = SIZES
            .iter()
            .map(|&s| Ok((s as f64, figure("round_trip", t, s, "ns")?)))
            .collect::<Result<Vec<_>, String>>()?;
        lines.push((t, pts));
    }
    let floor: Vec<(f64, f64)> = SIZES
        .iter()
        .map(|&s| Ok((s as f64, figure("round_trip", "spsc::Ring", s, "floor_ns")?)))
        .collect::<Result<_, String>>()?;
    let (lo, hi) = lines
        .iter()
        .flat_map(|(_, p)| p)
        .chain(&floor)
        .fold((f64::MAX, 0f64), |(lo, hi), &(_, y)| (lo.min(y), hi.max(y)));

    let root = SVGBackend::new(output, (860, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(680);
    let host = v["host"].as_str().unwrap_or("");
    let host = host.strip_prefix("Host: ").unwrap_or(host);
    // x is log2(size): ticks land exactly on the measured sizes.
    let mut chart = ChartBuilder::on(&left)
        .caption("Round trip between two processes (median)", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(2.5f64..16.5f64, (lo / 1.5..hi * 1.5).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(15)
        .x_desc("message size")
        .y_desc("round trip (log scale)")
        .x_label_formatter(&|x| match x.round() as u32 {
            e @ (3 | 6) => format!("{} B", 1u64 << e),
            e @ (12 | 16) => format!("{} KiB", 1u64 << (e - 10)),
            _ => String::new(),
        })
        .y_label_formatter(&|y| if *y >= 1000.0 { format!("{} µs", y / 1000.0) } else { format!("{y} ns") })
        .draw()?;
    let log2 = |pts: Vec<(f64, f64)>| pts.into_iter().map(|(x, y)| (x.log2(), y)).collect::<Vec<_>>();
    let mut legend = Vec::new();
    for ((name, pts), color) in lines.into_iter().zip(COLORS) {
        let pts = log2(pts);
        chart.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?;
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
        legend.push((name.to_string(), color.stroke_width(2)));
    }
    chart.draw_series(DashedLineSeries::new(log2(floor), 6, 4, BLACK.stroke_width(1)))?;
    legend.push(("floor (dashed)".into(), BLACK.stroke_width(1)));
    for (i, (name, style)) in legend.into_iter().enumerate() {
        let y = 60 + 24 * i as i32;
        right.draw(&PathElement::new([(4, y), (28, y)], style))?;
        right.draw(&Text::new(name, (34, y - 7), ("sans-serif", 14)))?;
    }
    let note = ["ringshm: WaitStrategy::Spin", "sides pinned to CPUs 0, 1"];
    for (i, t) in note.iter().copied().chain(host.split(", ")).enumerate() {
        right.draw(&Text::new(t.to_string(), (4, 260 + 18 * i as i32), ("sans-serif", 11)))?;
    }
    root.present()?;
    eprintln!("wrote {output}");
    Ok(())
}
