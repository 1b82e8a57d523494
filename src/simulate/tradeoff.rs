//! The quality/cost trade-off of a two-model router, measured the way RouteLLM does
//! (arXiv:2406.18665): route the top share of requests by score to the strong model and read
//! the performance gap recovered (PGR) at each share, its area (APGR) and the share of strong
//! calls needed for a given PGR (CPT).

use std::path::Path;

use plotters::prelude::*;
use serde_json::{Value, json};

/// One point of the curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Share of requests sent to the strong model, in `[0, 1]`.
    pub strong_share: f64,
    /// Mean quality at that share.
    pub quality: f64,
    /// Performance gap recovered: `(quality - weak) / (strong - weak)`.
    pub pgr: f64,
}

/// The trade-off curve of one score over one two-model evaluation set.
///
/// ```
/// use fluxroute::Tradeoff;
/// // (score, weak quality, strong quality): the router sends high scores to the strong model.
/// let set = [(0.9, 0.0, 1.0), (0.1, 1.0, 1.0), (0.5, 0.0, 0.0), (0.2, 1.0, 1.0)];
/// let t = Tradeoff::new("weak", "strong", &set, 4).unwrap();
/// assert_eq!(t.points.len(), 5);
/// assert_eq!(t.points[1].pgr, 1.0); // the first strong call recovers the whole gap
/// assert_eq!(t.cpt(0.5), Some(0.125));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Tradeoff {
    /// The weak model's id.
    pub weak: String,
    /// The strong model's id.
    pub strong: String,
    /// Records in the set.
    pub records: usize,
    /// Mean quality when every request goes to the weak model.
    pub weak_quality: f64,
    /// Mean quality when every request goes to the strong model.
    pub strong_quality: f64,
    /// The curve at evenly spaced shares, from all-weak to all-strong.
    pub points: Vec<Point>,
}

/// The curve at `steps + 1` evenly spaced shares of strong calls over `n` records with the
/// given mean qualities, where `gain_at(k)` is the quality gained by sending the `k`
/// highest-scored records to the strong model.
fn sweep(
    weak: &str,
    strong: &str,
    (n, weak_quality, strong_quality): (u64, f64, f64),
    steps: usize,
    gain_at: impl Fn(u64) -> f64,
) -> Tradeoff {
    let gap = strong_quality - weak_quality;
    let steps = steps as u64;
    let points = (0..=steps)
        .map(|k| {
            let strong_calls = (k * n + steps / 2) / steps;
            let quality = weak_quality + gain_at(strong_calls) / n as f64;
            Point {
                strong_share: strong_calls as f64 / n as f64,
                quality,
                pgr: (quality - weak_quality) / gap,
            }
        })
        .collect();
    Tradeoff {
        weak: weak.to_owned(),
        strong: strong.to_owned(),
        records: usize::try_from(n).unwrap_or(usize::MAX),
        weak_quality,
        strong_quality,
        points,
    }
}

impl Tradeoff {
    /// Sweeps `steps + 1` evenly spaced shares of strong calls over `(score, weak, strong)`
    /// triples. Ties in score keep input order. `None` when the set is empty or the two models
    /// are equally good (no gap to recover).
    pub fn new(
        weak: &str,
        strong: &str,
        set: &[(f64, f64, f64)],
        steps: usize,
    ) -> Option<Tradeoff> {
        let n = set.len();
        let steps = steps.max(1);
        let weak_quality = set.iter().map(|r| r.1).sum::<f64>() / n as f64;
        let strong_quality = set.iter().map(|r| r.2).sum::<f64>() / n as f64;
        let gap = strong_quality - weak_quality;
        if n == 0 || gap.abs() < 1e-12 || !gap.is_finite() {
            return None;
        }
        let mut order: Vec<usize> = (0..n).collect();
        // Highest score first; the sort is stable, so ties keep input order.
        order.sort_by(|&a, &b| {
            let (sa, sb) = (
                set.get(a).map_or(0.0, |r| r.0),
                set.get(b).map_or(0.0, |r| r.0),
            );
            sb.total_cmp(&sa)
        });
        // Prefix sums of the quality change from sending each record to the strong model.
        let mut gain = Vec::with_capacity(n + 1);
        gain.push(0.0);
        let mut acc = 0.0;
        for &i in &order {
            acc += set.get(i).map_or(0.0, |r| r.2 - r.1);
            gain.push(acc);
        }
        let gain_at = |calls: u64| {
            let at = usize::try_from(calls).unwrap_or(usize::MAX);
            gain.get(at).copied().unwrap_or(acc)
        };
        Some(sweep(
            weak,
            strong,
            (n as u64, weak_quality, strong_quality),
            steps,
            gain_at,
        ))
    }

    /// The same sweep over groups of records that share a score bucket (`(score, records,
    /// weak quality sum, strong quality sum)`), for logs too long to keep every record: records
    /// of one group count as tied, and a share that splits a group takes the group's mean gain
    /// for the records it sends. Each point then differs from the exact curve by at most the
    /// gain of the records of the one group it splits.
    pub(crate) fn from_groups(
        weak: &str,
        strong: &str,
        groups: &[(f64, u64, f64, f64)],
        steps: usize,
    ) -> Option<Tradeoff> {
        let n: u64 = groups.iter().map(|g| g.1).sum();
        let steps = steps.max(1);
        let nf = n as f64;
        let weak_quality = groups.iter().map(|g| g.2).sum::<f64>() / nf;
        let strong_quality = groups.iter().map(|g| g.3).sum::<f64>() / nf;
        let gap = strong_quality - weak_quality;
        if n == 0 || gap.abs() < 1e-12 || !gap.is_finite() {
            return None;
        }
        let mut order: Vec<&(f64, u64, f64, f64)> = groups.iter().filter(|g| g.1 > 0).collect();
        order.sort_by(|a, b| b.0.total_cmp(&a.0));
        let gain_at = |calls: u64| {
            let (mut left, mut gain) = (calls, 0.0);
            for g in &order {
                if left == 0 {
                    break;
                }
                let take = left.min(g.1);
                gain += (g.3 - g.2) * take as f64 / g.1 as f64;
                left -= take;
            }
            gain
        };
        Some(sweep(
            weak,
            strong,
            (n, weak_quality, strong_quality),
            steps,
            gain_at,
        ))
    }

    /// Average PGR: the area under PGR over the share of strong calls (trapezoids). A random
    /// router scores 0.5.
    pub fn apgr(&self) -> f64 {
        self.points
            .windows(2)
            .map(|w| match w {
                [a, b] => (b.strong_share - a.strong_share) * (a.pgr + b.pgr) / 2.0,
                _ => 0.0,
            })
            .sum()
    }

    /// Call-performance threshold: the smallest share of strong calls at which the curve
    /// reaches `pgr` (interpolated between points), or `None` if it never does.
    pub fn cpt(&self, pgr: f64) -> Option<f64> {
        let first = self.points.first()?;
        if first.pgr >= pgr {
            return Some(first.strong_share);
        }
        self.points.windows(2).find_map(|w| match w {
            [a, b] if a.pgr < pgr && b.pgr >= pgr => {
                let t = (pgr - a.pgr) / (b.pgr - a.pgr);
                Some(a.strong_share + t * (b.strong_share - a.strong_share))
            }
            _ => None,
        })
    }

    /// The report as JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "weak": self.weak,
            "strong": self.strong,
            "records": self.records,
            "weak_quality": self.weak_quality,
            "strong_quality": self.strong_quality,
            "apgr": self.apgr(),
            "cpt50": self.cpt(0.5),
            "cpt80": self.cpt(0.8),
            "random_apgr": 0.5,
            "points": self.points.iter().map(|p| json!({
                "strong_share": p.strong_share, "quality": p.quality, "pgr": p.pgr,
            })).collect::<Vec<_>>(),
        })
    }

    /// The report for people.
    pub fn to_table(&self) -> String {
        let mut s = format!(
            "trade-off over {} records: weak {} = {:.4}, strong {} = {:.4}\n",
            self.records, self.weak, self.weak_quality, self.strong, self.strong_quality
        );
        s.push_str("  strong calls   quality     PGR   random PGR\n");
        for p in &self.points {
            s.push_str(&format!(
                "  {:>11.1}%   {:>7.4}   {:>5.3}   {:>10.3}\n",
                p.strong_share * 100.0,
                p.quality,
                p.pgr,
                p.strong_share
            ));
        }
        let pct = |x: Option<f64>| x.map_or("never".to_owned(), |v| format!("{:.1}%", v * 100.0));
        s.push_str(&format!(
            "  APGR {:.4} (random 0.5000)   CPT(50%) {}   CPT(80%) {}\n",
            self.apgr(),
            pct(self.cpt(0.5)),
            pct(self.cpt(0.8))
        ));
        s
    }

    /// Draws quality against the share of strong calls as SVG, with the random router's line
    /// and the all-weak and all-strong levels.
    pub fn plot_svg(&self, path: &Path, title: &str) -> Result<(), String> {
        let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
        let err = |e: &dyn std::fmt::Display| format!("cannot draw {}: {e}", path.display());
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let lo = self.weak_quality.min(self.strong_quality);
        let hi = self
            .points
            .iter()
            .map(|p| p.quality)
            .fold(self.weak_quality.max(self.strong_quality), f64::max);
        let pad = (hi - lo).abs().max(0.01) * 0.1;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..100.0, (lo - pad)..(hi + pad))
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("strong model calls (%)")
            .y_desc("quality")
            .draw()
            .map_err(|e| err(&e))?;
        let curve: Vec<(f64, f64)> = self
            .points
            .iter()
            .map(|p| (p.strong_share * 100.0, p.quality))
            .collect();
        chart
            .draw_series(LineSeries::new(curve.iter().copied(), BLUE.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(format!("router (APGR {:.3})", self.apgr()))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
        chart
            .draw_series(curve.iter().map(|&p| Circle::new(p, 3, BLUE.filled())))
            .map_err(|e| err(&e))?;
        let random = [(0.0, self.weak_quality), (100.0, self.strong_quality)];
        chart
            .draw_series(LineSeries::new(random, BLACK.mix(0.5)))
            .map_err(|e| err(&e))?
            .label("random (APGR 0.5)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.5)));
        for (q, color, label) in [
            (self.weak_quality, RED, format!("all {}", self.weak)),
            (self.strong_quality, GREEN, format!("all {}", self.strong)),
        ] {
            chart
                .draw_series(LineSeries::new([(0.0, q), (100.0, q)], color.mix(0.6)))
                .map_err(|e| err(&e))?
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten records, hand-checked: weak is right on 0..5, strong on 0..8.
    fn set(score: impl Fn(usize) -> f64) -> Vec<(f64, f64, f64)> {
        (0..10)
            .map(|i| {
                (
                    score(i),
                    f64::from(u8::from(i < 5)),
                    f64::from(u8::from(i < 8)),
                )
            })
            .collect()
    }

    #[test]
    fn a_perfect_score_recovers_the_gap_first() {
        // Records 5, 6, 7 are the only ones the strong model fixes; score them highest.
        let t = Tradeoff::new(
            "w",
            "s",
            &set(|i| if (5..8).contains(&i) { 1.0 } else { 0.0 }),
            10,
        )
        .unwrap();
        assert_eq!((t.weak_quality, t.strong_quality), (0.5, 0.8));
        let pgr: Vec<f64> = t
            .points
            .iter()
            .map(|p| (p.pgr * 1e9).round() / 1e9)
            .collect();
        let third = 1.0 / 3.0;
        let expect = [
            0.0,
            third,
            2.0 * third,
            1.0,
            1.0,
            1.0,
            1.0,
            1.0,
            1.0,
            1.0,
            1.0,
        ];
        for (a, b) in pgr.iter().zip(expect) {
            assert!((a - b).abs() < 1e-9, "{pgr:?}");
        }
        // Trapezoids: 0.1 * (0/2 + 1/3 + 2/3 + 1 * 7 + 1/2) = 0.85.
        assert!((t.apgr() - 0.85).abs() < 1e-12, "{}", t.apgr());
        assert!((t.cpt(0.5).unwrap() - 0.15).abs() < 1e-12);
        assert!((t.cpt(0.8).unwrap() - 0.24).abs() < 1e-12);
    }

    #[test]
    fn the_worst_score_recovers_the_gap_last() {
        let t = Tradeoff::new(
            "w",
            "s",
            &set(|i| if (5..8).contains(&i) { 0.0 } else { 1.0 }),
            10,
        )
        .unwrap();
        // The last three strong calls recover everything: 0.1 * (1/3 + 2/3 + 1/2) = 0.15.
        assert!((t.apgr() - 0.15).abs() < 1e-12, "{}", t.apgr());
        assert!((t.cpt(0.5).unwrap() - 0.85).abs() < 1e-12);
    }

    #[test]
    fn a_score_that_ignores_the_request_is_near_random() {
        let set: Vec<(f64, f64, f64)> = (0..1000)
            .map(|i| (0.0, f64::from(u8::from(i % 2 == 0)), 1.0))
            .collect();
        let t = Tradeoff::new("w", "s", &set, 10).unwrap();
        assert!((t.apgr() - 0.5).abs() < 0.01, "{}", t.apgr());
    }

    #[test]
    fn groups_of_one_record_give_the_exact_curve_and_buckets_stay_close() {
        let exact_set = set(|i| (i % 7) as f64 / 7.0);
        let exact = Tradeoff::new("w", "s", &exact_set, 10).unwrap();
        // Distinct scores, one record a group: the same curve.
        let distinct: Vec<(f64, f64, f64)> = (0..1000)
            .map(|i| (f64::from(i) / 1000.0, f64::from(u8::from(i % 3 == 0)), 1.0))
            .collect();
        let groups: Vec<(f64, u64, f64, f64)> =
            distinct.iter().map(|&(s, a, b)| (s, 1, a, b)).collect();
        let a = Tradeoff::new("w", "s", &distinct, 10).unwrap();
        let b = Tradeoff::from_groups("w", "s", &groups, 10).unwrap();
        assert!(
            (a.apgr() - b.apgr()).abs() < 1e-12,
            "{} {}",
            a.apgr(),
            b.apgr()
        );
        // Seven score values as seven groups: within one group's gain per point.
        let mut seven = [(0.0, 0u64, 0.0, 0.0); 7];
        for &(s, w, st) in &exact_set {
            let g = &mut seven[(s * 7.0).round() as usize];
            *g = (s, g.1 + 1, g.2 + w, g.3 + st);
        }
        let grouped = Tradeoff::from_groups("w", "s", &seven, 10).unwrap();
        assert_eq!(grouped.records, exact.records);
        // Each point is off by at most the gain of the one group it splits, over all records.
        let largest = seven.iter().map(|g| g.1).max().unwrap() as f64;
        for (p, q) in exact.points.iter().zip(&grouped.points) {
            assert!(
                (p.quality - q.quality).abs() <= largest / 10.0 + 1e-9,
                "{p:?} {q:?}"
            );
        }
    }

    #[test]
    fn no_gap_means_no_curve() {
        assert!(Tradeoff::new("w", "s", &[(0.0, 1.0, 1.0)], 10).is_none());
        assert!(Tradeoff::new("w", "s", &[], 10).is_none());
    }
}
