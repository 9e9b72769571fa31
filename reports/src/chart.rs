//! Chart descriptions and their drawing with plotters, on SVG (HTML reports) or bitmap (PNG,
//! Markdown reports). Describing a chart first and drawing it second keeps both renderings
//! identical and lets the document builder stay free of plotting code.

use std::sync::Once;

use plotters::coord::ranged1d::SegmentValue;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::RGBColor;

/// Chart size in pixels.
pub(crate) const WIDTH: u32 = 1000;
/// Chart height in pixels.
pub(crate) const HEIGHT: u32 = 380;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Text in charts is measured (both backends) and rasterised (bitmap) with the embedded
/// DejaVu Sans, so PNGs look the same on every machine and need no system fonts.
fn register_fonts() {
    REGISTER.call_once(|| {
        for family in ["sans-serif", "serif", "monospace"] {
            // The font is a valid TrueType file we ship; failing here would only lose text.
            let _ = plotters::style::register_font(family, FontStyle::Normal, FONT);
        }
    });
}

/// Which y axis a series is drawn against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Axis {
    /// Left.
    Left,
    /// Right.
    Right,
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// Solid line.
    Line,
    /// Dashed line.
    Dashed,
    /// Line with a dot at each point.
    LinePoints,
    /// Dots only.
    Points,
}

/// One series of an x–y chart; a series may have gaps (several segments).
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// Legend text.
    pub name: String,
    /// Colour.
    pub color: RGBColor,
    /// Line or points.
    pub style: Style,
    /// Axis.
    pub axis: Axis,
    /// Runs of points without gaps.
    pub segments: Vec<Vec<(f64, f64)>>,
}

/// Vertical lines at event times (e.g. spot interruptions).
#[derive(Debug, Clone)]
pub(crate) struct EventLines {
    /// Legend text.
    pub name: String,
    /// Colour.
    pub color: RGBColor,
    /// x positions.
    pub xs: Vec<f64>,
}

/// Triangle markers (e.g. scale-ups at their new replica count).
#[derive(Debug, Clone)]
pub(crate) struct Markers {
    /// Legend text.
    pub name: String,
    /// Colour.
    pub color: RGBColor,
    /// Axis of the y values.
    pub axis: Axis,
    /// Positions.
    pub points: Vec<(f64, f64)>,
}

/// A horizontal reference line (e.g. an SLO limit).
#[derive(Debug, Clone)]
pub(crate) struct HLine {
    /// Legend text.
    pub name: String,
    /// Colour.
    pub color: RGBColor,
    /// y on the left axis.
    pub y: f64,
}

/// An x–y chart: time series, CDFs, scatter plots.
#[derive(Debug, Clone)]
pub(crate) struct XyChart {
    /// x-axis description with unit.
    pub x_label: String,
    /// Left y-axis description with unit.
    pub y_label: String,
    /// Right y-axis description, when some series use it.
    pub y2_label: Option<String>,
    /// Plot log10 of x (labels show the values).
    pub log_x: bool,
    /// Plot log10 of the left y (labels show the values).
    pub log_y: bool,
    /// Series.
    pub series: Vec<Series>,
    /// Event lines.
    pub events: Vec<EventLines>,
    /// Markers.
    pub markers: Vec<Markers>,
    /// Reference lines.
    pub hlines: Vec<HLine>,
}

/// One series of a bar chart: a value per category.
#[derive(Debug, Clone)]
pub(crate) struct BarSeries {
    /// Legend text.
    pub name: String,
    /// Colour.
    pub color: RGBColor,
    /// Value per category.
    pub values: Vec<f64>,
}

/// Grouped or stacked bars over named categories.
#[derive(Debug, Clone)]
pub(crate) struct BarChart {
    /// y-axis description with unit.
    pub y_label: String,
    /// Category names (x axis).
    pub categories: Vec<String>,
    /// Series.
    pub series: Vec<BarSeries>,
    /// Stack the series instead of placing them side by side.
    pub stacked: bool,
    /// Reference lines.
    pub hlines: Vec<HLine>,
}

/// What a chart draws.
#[derive(Debug, Clone)]
pub(crate) enum Plot {
    /// Lines and points.
    Xy(XyChart),
    /// Bars.
    Bar(BarChart),
}

/// A chart with its identity.
#[derive(Debug, Clone)]
pub(crate) struct Chart {
    /// Unique in a report; used for file names and DOM attributes.
    pub id: String,
    /// Caption.
    pub title: String,
    /// What to draw.
    pub plot: Plot,
}

/// Why a chart could not be drawn or encoded; the message ends up in the report (SVG) or in
/// [`crate::ReportError::Chart`] (PNG).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChartError {
    /// plotters failed; its error type depends on the backend, so only its message is kept.
    #[error("{0}")]
    Draw(String),
    /// The PNG encoder failed.
    #[error(transparent)]
    Encode(image::ImageError),
}

type DrawResult = Result<(), ChartError>;

/// The chart as an SVG document. A chart that cannot be drawn yields a small SVG saying so
/// (marked `chart-error`), so one bad chart never hides the rest of a report.
pub(crate) fn to_svg(chart: &Chart) -> String {
    register_fonts();
    let mut svg = String::new();
    let result = {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, chart)
            .and_then(|()| root.present().map_err(|e| ChartError::Draw(e.to_string())))
    };
    match result {
        Ok(()) => svg,
        Err(e) => format!(
            "<svg class=\"chart-error\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"40\"><text x=\"10\" y=\"25\">chart could not be drawn: {}</text></svg>",
            crate::xml::escape(&e.to_string())
        ),
    }
}

/// The chart as a PNG image.
pub(crate) fn to_png(chart: &Chart) -> Result<Vec<u8>, ChartError> {
    register_fonts();
    let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, chart)?;
        root.present()
            .map_err(|e| ChartError::Draw(e.to_string()))?;
    }
    let mut png = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new(&mut png);
    image::ImageEncoder::write_image(encoder, &rgb, WIDTH, HEIGHT, image::ColorType::Rgb8)
        .map_err(ChartError::Encode)?;
    Ok(png)
}

/// The legend sample of a series, drawn like it: a line, a dashed line, a dot, or a line with
/// a dot. (A macro because the element's type depends on the backend.)
macro_rules! legend_mark {
    ($style:expr, $color:expr, $x:expr, $y:expr) => {{
        let color: RGBColor = $color;
        let full = vec![(0, 0), (18, 0)];
        let (first, second, dot) = match $style {
            Style::Points => (vec![], vec![], 4),
            Style::Dashed => (vec![(0, 0), (6, 0)], vec![(11, 0), (18, 0)], 0),
            Style::Line => (full, vec![], 0),
            Style::LinePoints => (full, vec![], 3),
        };
        let fill = if dot > 0 {
            color.filled()
        } else {
            color.mix(0.0).filled()
        };
        EmptyElement::at(($x, $y))
            + Circle::new((9, 0), dot, fill)
            + PathElement::new(first, color.stroke_width(2))
            + PathElement::new(second, color.stroke_width(2))
    }};
}

/// Width of the legend panel right of the plot: legends never cover data.
const LEGEND_WIDTH: u32 = 230;

/// What a legend entry's sample looks like.
#[derive(Debug, Clone, Copy)]
enum Sample {
    Series(Style),
    EventLine,
    Marker,
    Bar,
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, chart: &Chart) -> DrawResult {
    root.fill(&WHITE)
        .map_err(|e| ChartError::Draw(e.to_string()))?;
    let (plot, legend) = root.split_horizontally(WIDTH - LEGEND_WIDTH);
    let entries = match &chart.plot {
        Plot::Xy(xy) => draw_xy(&plot, &chart.title, xy)?,
        Plot::Bar(bar) => draw_bar(&plot, &chart.title, bar)?,
    };
    draw_legend(&legend, &entries)
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, RGBColor, Sample)],
) -> DrawResult {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| ChartError::Draw(e.to_string());
    let row = 19;
    let max_rows = ((HEIGHT as i32 - 60) / row).max(1) as usize;
    for (i, (name, color, sample)) in entries.iter().take(max_rows).enumerate() {
        let color = *color;
        let x = 8;
        let y = 48 + row * i as i32;
        match sample {
            Sample::Series(style) => area.draw(&legend_mark!(*style, color, x, y)),
            Sample::EventLine => area.draw(&PathElement::new(
                vec![(x + 9, y - 7), (x + 9, y + 7)],
                color.stroke_width(2),
            )),
            Sample::Marker => area.draw(&TriangleMarker::new((x + 9, y), 6, color.filled())),
            Sample::Bar => area.draw(&Rectangle::new(
                [(x + 2, y - 6), (x + 16, y + 6)],
                color.filled(),
            )),
        }
        .map_err(err)?;
        let text: String = if name.chars().count() > 30 {
            name.chars().take(29).chain(['…']).collect()
        } else {
            name.clone()
        };
        area.draw(&Text::new(
            text,
            (x + 26, y - 7),
            ("sans-serif", 13).into_font().color(&BLACK),
        ))
        .map_err(err)?;
    }
    if entries.len() > max_rows {
        area.draw(&Text::new(
            format!("… {} more", entries.len() - max_rows),
            (34, 48 + row * max_rows as i32 - 7),
            ("sans-serif", 13),
        ))
        .map_err(err)?;
    }
    Ok(())
}

/// `[lo, hi]` covering `values`, starting at zero for non-negative data, with some headroom.
fn range(values: impl Iterator<Item = f64>, from_zero: bool, headroom: f64) -> (f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if from_zero && lo >= 0.0 {
        lo = 0.0;
    }
    if hi - lo < 1e-9 {
        hi = lo + hi.abs().max(1.0);
    }
    let hi = hi + (hi - lo) * headroom;
    if lo.is_finite() && hi.is_finite() {
        (lo, hi)
    } else {
        // Values near f64::MAX: nothing sensible to draw, but never an infinite axis.
        (0.0, 1.0)
    }
}

/// Axis labels: short, without trailing zeros.
pub(crate) fn format_number(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        let s = if a >= 10.0 {
            format!("{v:.1}")
        } else if a >= 1.0 {
            format!("{v:.2}")
        } else if a >= 0.01 {
            format!("{v:.3}")
        } else if a >= 0.0001 {
            format!("{v:.6}")
        } else {
            format!("{v:.1e}")
        };
        if s.contains('.') && !s.contains('e') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    }
}

fn log_label(v: f64) -> String {
    format_number(10f64.powf(v))
}

fn tx(log: bool, v: f64) -> f64 {
    if log {
        v.max(1e-9).log10()
    } else {
        v
    }
}

const GRID_LIGHT: RGBColor = RGBColor(247, 247, 247);
const GRID_BOLD: RGBColor = RGBColor(222, 222, 222);

type Legend = Vec<(String, RGBColor, Sample)>;

fn draw_xy<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    c: &XyChart,
) -> Result<Legend, ChartError> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| ChartError::Draw(e.to_string());
    let mut legend = Legend::new();
    let on = |axis: Axis| c.series.iter().filter(move |s| s.axis == axis);
    let xs = c
        .series
        .iter()
        .flat_map(|s| s.segments.iter().flatten().map(|p| p.0))
        .chain(c.events.iter().flat_map(|e| e.xs.iter().copied()))
        .chain(c.markers.iter().flat_map(|m| m.points.iter().map(|p| p.0)))
        .map(|x| tx(c.log_x, x));
    // Time axes start at zero; axes of data far from zero (costs of candidates, growth
    // factors) fit the data with a little padding instead.
    let (mut x0, mut x1) = range(xs, false, 0.0);
    if !c.log_x && x0 >= 0.0 && x0 < 0.25 * x1 {
        x0 = 0.0;
    } else {
        let pad = (x1 - x0) * 0.04;
        x0 -= pad;
        x1 += pad;
    }
    let left = on(Axis::Left)
        .flat_map(|s| s.segments.iter().flatten().map(|p| p.1))
        .chain(c.hlines.iter().map(|h| h.y))
        .chain(
            c.markers
                .iter()
                .filter(|m| m.axis == Axis::Left)
                .flat_map(|m| m.points.iter().map(|p| p.1)),
        )
        .map(|y| tx(c.log_y, y));
    let (y0, y1) = range(left, !c.log_y, 0.08);
    let right = on(Axis::Right)
        .flat_map(|s| s.segments.iter().flatten().map(|p| p.1))
        .chain(
            c.markers
                .iter()
                .filter(|m| m.axis == Axis::Right)
                .flat_map(|m| m.points.iter().map(|p| p.1)),
        );
    let (z0, z1) = range(right, true, 0.08);

    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .right_y_label_area_size(if c.y2_label.is_some() { 64 } else { 0 })
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?
        .set_secondary_coord(x0..x1, z0..z1);
    let fx = |v: &f64| {
        if c.log_x {
            log_label(*v)
        } else {
            format_number(*v)
        }
    };
    let fy = |v: &f64| {
        if c.log_y {
            log_label(*v)
        } else {
            format_number(*v)
        }
    };
    chart
        .configure_mesh()
        .x_desc(c.x_label.as_str())
        .y_desc(c.y_label.as_str())
        .x_labels(10)
        .y_labels(8)
        .x_label_formatter(&fx)
        .y_label_formatter(&fy)
        .light_line_style(GRID_LIGHT)
        .bold_line_style(GRID_BOLD)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    if let Some(y2) = &c.y2_label {
        chart
            .configure_secondary_axes()
            .y_desc(y2.as_str())
            .y_labels(8)
            .y_label_formatter(&|v: &f64| format_number(*v))
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 14))
            .draw()
            .map_err(err)?;
    }

    for e in &c.events {
        let style = e.color.mix(0.6).stroke_width(1);
        for &x in &e.xs {
            let x = tx(c.log_x, x);
            chart
                .draw_series(DashedLineSeries::new(vec![(x, y0), (x, y1)], 6, 4, style))
                .map_err(err)?;
        }
        if !e.xs.is_empty() {
            legend.push((e.name.clone(), e.color, Sample::EventLine));
        }
    }
    for h in &c.hlines {
        let y = tx(c.log_y, h.y);
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x0, y), (x1, y)],
                8,
                5,
                h.color.stroke_width(2),
            ))
            .map_err(err)?;
        legend.push((h.name.clone(), h.color, Sample::Series(Style::Dashed)));
    }
    for s in &c.series {
        let color = s.color;
        let style = color.stroke_width(2);
        for seg in &s.segments {
            let pts: Vec<(f64, f64)> = seg
                .iter()
                .map(|&(x, y)| {
                    let y = if s.axis == Axis::Left {
                        tx(c.log_y, y)
                    } else {
                        y
                    };
                    (tx(c.log_x, x), y)
                })
                .collect();
            match (s.style, s.axis) {
                (Style::Line, Axis::Left) => chart.draw_series(LineSeries::new(pts, style)),
                (Style::Line, Axis::Right) => {
                    chart.draw_secondary_series(LineSeries::new(pts, style))
                }
                (Style::Dashed, Axis::Left) => {
                    chart.draw_series(DashedLineSeries::new(pts, 7, 4, style))
                }
                (Style::Dashed, Axis::Right) => {
                    chart.draw_secondary_series(DashedLineSeries::new(pts, 7, 4, style))
                }
                (Style::LinePoints, Axis::Left) => {
                    chart.draw_series(LineSeries::new(pts, style).point_size(3))
                }
                (Style::LinePoints, Axis::Right) => {
                    chart.draw_secondary_series(LineSeries::new(pts, style).point_size(3))
                }
                (Style::Points, Axis::Left) => {
                    chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, color.filled())))
                }
                (Style::Points, Axis::Right) => chart.draw_secondary_series(
                    pts.into_iter().map(|p| Circle::new(p, 4, color.filled())),
                ),
            }
            .map_err(err)?;
        }
        let name = if s.segments.iter().all(Vec::is_empty) {
            format!("{} (no data)", s.name)
        } else {
            s.name.clone()
        };
        legend.push((name, color, Sample::Series(s.style)));
    }
    for m in &c.markers {
        let color = m.color;
        let tri = |p: (f64, f64)| TriangleMarker::new(p, 6, color.filled());
        match m.axis {
            Axis::Left => chart.draw_series(
                m.points
                    .iter()
                    .map(|&(x, y)| tri((tx(c.log_x, x), tx(c.log_y, y)))),
            ),
            Axis::Right => {
                chart.draw_secondary_series(m.points.iter().map(|&(x, y)| tri((tx(c.log_x, x), y))))
            }
        }
        .map_err(err)?;
        if !m.points.is_empty() {
            legend.push((m.name.clone(), color, Sample::Marker));
        }
    }
    Ok(legend)
}

fn draw_bar<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    c: &BarChart,
) -> Result<Legend, ChartError> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| ChartError::Draw(e.to_string());
    let n = c.categories.len().max(1);
    let k = c.series.len().max(1);
    // Grouped: k bars and one gap per category; stacked: one bar per category.
    let stride = if c.stacked { 1 } else { k + 1 };
    let slots = n * stride;
    let tops: Vec<f64> = (0..n)
        .flat_map(|i| {
            let column = c
                .series
                .iter()
                .map(move |s| s.values.get(i).copied().unwrap_or(0.0));
            if c.stacked {
                vec![column.filter(|v| v.is_finite()).sum::<f64>()]
            } else {
                column.collect()
            }
        })
        .chain(c.hlines.iter().map(|h| h.y))
        .collect();
    let (y0, y1) = range(tops.into_iter(), true, 0.08);
    // A segmented 0..m has m + 1 segments.
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d((0..slots - 1).into_segmented(), y0..y1)
        .map_err(err)?;
    let cats = &c.categories;
    let label_slot = if c.stacked { 0 } else { (k - 1) / 2 };
    let fx = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(s) if s % stride == label_slot => {
            cats.get(s / stride).cloned().unwrap_or_default()
        }
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(slots + 1)
        .x_label_formatter(&fx)
        .y_desc(c.y_label.as_str())
        .y_labels(8)
        .y_label_formatter(&|v: &f64| format_number(*v))
        .light_line_style(GRID_LIGHT)
        .bold_line_style(GRID_BOLD)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    let mut legend = Legend::new();
    let mut base = vec![0.0; n];
    for (j, s) in c.series.iter().enumerate() {
        let color = s.color;
        let bars: Vec<Rectangle<(SegmentValue<usize>, f64)>> = (0..n)
            .filter_map(|i| {
                let v = s.values.get(i).copied().filter(|v| v.is_finite())?;
                let slot = if c.stacked { i } else { i * stride + j };
                let (lo, hi) = if c.stacked {
                    let lo = base[i];
                    base[i] += v;
                    (lo, lo + v)
                } else {
                    (0.0, v)
                };
                let mut r = Rectangle::new(
                    [
                        (SegmentValue::Exact(slot), lo),
                        (SegmentValue::Exact(slot + 1), hi),
                    ],
                    color.filled(),
                );
                let m = if c.stacked { 24 } else { 1 };
                r.set_margin(0, 0, m, m);
                Some(r)
            })
            .collect();
        chart.draw_series(bars).map_err(err)?;
        legend.push((s.name.clone(), color, Sample::Bar));
    }
    for h in &c.hlines {
        chart
            .draw_series(DashedLineSeries::new(
                vec![
                    (SegmentValue::Exact(0), h.y),
                    (SegmentValue::Exact(slots), h.y),
                ],
                8,
                5,
                h.color.stroke_width(2),
            ))
            .map_err(err)?;
        legend.push((h.name.clone(), h.color, Sample::Series(Style::Dashed)));
    }
    Ok(legend)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Chart> {
        let xy = Chart {
            id: "xy".into(),
            title: "Traffic".into(),
            plot: Plot::Xy(XyChart {
                x_label: "time (min)".into(),
                y_label: "requests/s".into(),
                y2_label: Some("replicas".into()),
                log_x: false,
                log_y: false,
                series: vec![
                    Series {
                        name: "rps".into(),
                        color: RGBColor(31, 119, 180),
                        style: Style::Line,
                        axis: Axis::Left,
                        segments: vec![vec![(0.0, 1.0), (1.0, 3.0)], vec![(2.0, 2.0), (3.0, 2.5)]],
                    },
                    Series {
                        name: "ready".into(),
                        color: RGBColor(31, 119, 180),
                        style: Style::Dashed,
                        axis: Axis::Right,
                        segments: vec![vec![(0.0, 1.0), (3.0, 2.0)]],
                    },
                ],
                events: vec![EventLines {
                    name: "spot interruption".into(),
                    color: RGBColor(214, 39, 40),
                    xs: vec![1.5],
                }],
                markers: vec![Markers {
                    name: "scale-up".into(),
                    color: RGBColor(0, 0, 0),
                    axis: Axis::Right,
                    points: vec![(2.0, 2.0)],
                }],
                hlines: vec![],
            }),
        };
        let bar = Chart {
            id: "bar".into(),
            title: "Cost".into(),
            plot: Plot::Bar(BarChart {
                y_label: "USD".into(),
                categories: vec!["by group".into(), "by API".into()],
                series: vec![
                    BarSeries {
                        name: "gpu".into(),
                        color: RGBColor(1, 2, 3),
                        values: vec![1.0, 0.0],
                    },
                    BarSeries {
                        name: "classifier".into(),
                        color: RGBColor(3, 2, 1),
                        values: vec![0.0, 0.8],
                    },
                ],
                stacked: true,
                hlines: vec![HLine {
                    name: "budget".into(),
                    color: crate::palette::NEUTRAL,
                    y: 0.9,
                }],
            }),
        };
        vec![xy, bar]
    }

    #[test]
    fn svg_and_png_render() {
        for chart in sample() {
            let svg = to_svg(&chart);
            assert!(svg.starts_with("<svg"), "{svg}");
            assert!(!svg.contains("chart-error"), "{svg}");
            assert!(svg.contains(&chart.title));
            let png = to_png(&chart).expect("png");
            assert_eq!(&png[1..4], b"PNG");
            assert_eq!(to_png(&chart).expect("png"), png, "deterministic");
        }
    }

    #[test]
    fn empty_chart_still_renders() {
        let chart = Chart {
            id: "e".into(),
            title: "Empty".into(),
            plot: Plot::Xy(XyChart {
                x_label: "x".into(),
                y_label: "y".into(),
                y2_label: None,
                log_x: true,
                log_y: true,
                series: vec![],
                events: vec![],
                markers: vec![],
                hlines: vec![],
            }),
        };
        assert!(!to_svg(&chart).contains("chart-error"));
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(format_number(0.0), "0");
        assert_eq!(format_number(2.50), "2.5");
        assert_eq!(format_number(12.0), "12");
        assert_eq!(format_number(250.4), "250");
        assert_eq!(format_number(25_000.0), "25k");
        assert_eq!(format_number(0.125), "0.125");
        assert_eq!(format_number(0.001), "0.001");
        assert_eq!(format_number(0.00025), "0.00025");
    }
}
