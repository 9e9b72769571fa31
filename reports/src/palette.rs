//! Colours: the same API or node group gets the same colour in every chart of a report.

use std::collections::BTreeMap;

use plotters::style::RGBColor;

use crate::Report;

/// Tableau 10 (its grey swapped for light blue, grey being reserved for totals and idle):
/// distinguishable, and readable on white.
const COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(174, 199, 232),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The `i`-th colour of the palette, for series that are neither APIs nor groups (an API's
/// tenants).
pub(crate) fn nth_colour(i: usize) -> RGBColor {
    COLOURS[i % COLOURS.len()]
}

/// Colour of events that interrupt capacity (spot reclaims, failed launches).
pub(crate) const ALERT: RGBColor = RGBColor(214, 39, 40);
/// Colour of totals and of things that belong to no API or group (control plane, idle).
pub(crate) const NEUTRAL: RGBColor = RGBColor(90, 90, 90);
/// A lighter neutral for secondary totals.
pub(crate) const LIGHT: RGBColor = RGBColor(170, 170, 170);

/// Assigns colours to APIs and node groups in order of first appearance across all inputs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Palette {
    apis: BTreeMap<String, RGBColor>,
    groups: BTreeMap<String, RGBColor>,
}

impl Palette {
    /// APIs take colours from the start of the palette, node groups from the end, so an API and
    /// a group rarely share a colour.
    pub(crate) fn for_report(report: &Report) -> Palette {
        let mut p = Palette::default();
        let mut apis: Vec<&str> = Vec::new();
        let mut groups: Vec<&str> = Vec::new();
        for run in &report.runs {
            for a in &run.results.apis {
                if !apis.contains(&a.name.as_str()) {
                    apis.push(&a.name);
                }
            }
            for g in &run.results.node_groups {
                if !groups.contains(&g.name.as_str()) {
                    groups.push(&g.name);
                }
            }
        }
        for (i, a) in apis.iter().enumerate() {
            p.apis.insert((*a).to_string(), COLOURS[i % COLOURS.len()]);
        }
        for (i, g) in groups.iter().enumerate() {
            let idx = (COLOURS.len() * 4 - 1 - i) % COLOURS.len();
            p.groups.insert((*g).to_string(), COLOURS[idx]);
        }
        p
    }

    /// An API's colour.
    pub(crate) fn api(&self, name: &str) -> RGBColor {
        self.apis.get(name).copied().unwrap_or(NEUTRAL)
    }

    /// A node group's colour.
    pub(crate) fn group(&self, name: &str) -> RGBColor {
        self.groups.get(name).copied().unwrap_or(NEUTRAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_name_same_colour_across_runs() {
        let mut r = Report::default();
        let a = crate::testdata::small_results();
        let mut b = a.clone();
        b.apis.reverse();
        r.push_run("a.json".into(), a);
        r.push_run("b.json".into(), b);
        let p = Palette::for_report(&r);
        assert_eq!(p.api("a"), COLOURS[0]);
        assert_eq!(p.api("b"), COLOURS[1]);
        assert_ne!(p.group("od"), p.group("spot"));
        assert_ne!(p.group("od"), p.api("a"));
        assert_eq!(p.api("unknown"), NEUTRAL);
    }
}
