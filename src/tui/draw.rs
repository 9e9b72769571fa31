//! Drawing one frame of the live view: traffic, replicas (and LLM engines) or the load
//! generator's client-side figures, nodes and events.

use super::*;

fn clock(s: f64) -> String {
    let s = s.max(0.0) as u64;
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

fn ms(v: Option<f64>) -> String {
    v.map_or("–".to_string(), |v| format!("{v:.0}"))
}

fn count(v: Option<f64>) -> String {
    v.map_or("–".to_string(), |v| format!("{v:.0}"))
}

/// Draw one frame.
pub(crate) fn draw(frame: &mut Frame, view: &LiveView, mode: Mode) {
    let area = frame.area();
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(1),
            Constraint::Length(3 * view.apis.len().max(1) as u16 + 2),
            Constraint::Min(6),
            Constraint::Length(1),
        ])
        .split(area);
    let finished = view.now_s >= view.duration_s;
    let state = match mode {
        _ if finished => "finished".to_string(),
        Mode::Replay(p) if p.paused => format!("{}× · paused", p.speed),
        Mode::Replay(p) => format!("{}× · running", p.speed),
        Mode::Live => "live".to_string(),
    };
    let cost = view
        .cost_usd
        .map_or(String::new(), |c| format!(" · ${c:.2}"));
    let header = Line::from(vec![
        Span::styled(
            " simctl ",
            Style::default().add_modifier(Modifier::REVERSED),
        ),
        Span::raw(format!(
            " {} · {}/{} · {state}{cost}",
            view.title,
            clock(view.now_s),
            clock(view.duration_s),
        )),
    ]);
    frame.render_widget(Paragraph::new(header), rows[0]);
    draw_traffic(frame, view, rows[1]);
    let middle = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Percentage(55), Constraint::Percentage(45)])
        .split(rows[2]);
    let llm_apis = view.apis.iter().filter(|a| a.llm.is_some()).count() as u16;
    let tenants = view.apis.iter().map(|a| a.tenants.len()).sum::<usize>() as u16;
    let mut constraints = vec![Constraint::Length(view.apis.len() as u16 + 3)];
    if llm_apis > 0 {
        constraints.push(Constraint::Length(llm_apis + 3));
    }
    if tenants > 0 {
        constraints.push(Constraint::Length(tenants + 3));
    }
    constraints.push(Constraint::Min(3));
    let left = Layout::default()
        .direction(Direction::Vertical)
        .constraints(constraints)
        .split(middle[0]);
    match &view.load {
        None => {
            draw_apis(frame, view, left[0]);
            if llm_apis > 0 {
                draw_llm(frame, view, left[1]);
            }
            if tenants > 0 {
                draw_tenants(frame, view, left[left.len() - 2]);
            }
            draw_nodes(frame, view, left[left.len() - 1]);
        }
        Some(load) => {
            draw_load_apis(frame, view, load, left[0]);
            if llm_apis > 0 {
                draw_llm(frame, view, left[1]);
            }
            draw_load_client(frame, load, left[left.len() - 1]);
        }
    }
    draw_events(frame, view, middle[1]);
    let footer = match mode {
        _ if finished => " q write results and quit",
        Mode::Replay(_) => {
            " q quit (results are written) · space pause · + / − speed · s step · e jump to end"
        }
        Mode::Live => " q stop (results are written)",
    };
    frame.render_widget(
        Paragraph::new(footer).style(Style::default().fg(Color::DarkGray)),
        rows[3],
    );
}

fn draw_traffic(frame: &mut Frame, view: &LiveView, area: Rect) {
    let block = Block::default()
        .borders(Borders::ALL)
        .title(if view.load.is_some() {
            " traffic sent (req/s, per second) "
        } else {
            " traffic (req/s per timeline step) "
        });
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if view.apis.is_empty() {
        return;
    }
    let parts = Layout::default()
        .direction(Direction::Vertical)
        .constraints(vec![Constraint::Length(3); view.apis.len()])
        .split(inner);
    for (i, (api, part)) in view.apis.iter().zip(parts.iter()).enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let label_width = 18.min(part.width);
        let cols = Layout::default()
            .direction(Direction::Horizontal)
            .constraints([Constraint::Length(label_width), Constraint::Min(1)])
            .split(*part);
        let now = api.rps.last().copied().unwrap_or(0);
        frame.render_widget(
            Paragraph::new(vec![
                Line::styled(api.name.clone(), Style::default().fg(colour)),
                Line::raw(format!("{now} req/s")),
            ]),
            cols[0],
        );
        let width = cols[1].width as usize;
        let data: Vec<u64> = api
            .rps
            .iter()
            .skip(api.rps.len().saturating_sub(width))
            .copied()
            .collect();
        frame.render_widget(
            Sparkline::default()
                .data(&data)
                .style(Style::default().fg(colour)),
            cols[1],
        );
    }
}

/// One of the per-API tables: a bold header, one row per API (its name in the API's colour,
/// then `cells`), fixed column widths after the name, a bordered block titled `title`.
fn draw_api_table<'a>(
    frame: &mut Frame,
    area: Rect,
    title: &str,
    header: &[&'a str],
    widths: &[u16],
    rows: impl Iterator<Item = (usize, String, Vec<Cell<'a>>)>,
) {
    let header = Row::new(header.to_vec()).style(Style::default().add_modifier(Modifier::BOLD));
    let rows = rows.map(|(i, name, cells)| {
        let mut row = vec![Cell::from(name).style(Style::default().fg(PALETTE[i % PALETTE.len()]))];
        row.extend(cells);
        Row::new(row)
    });
    let widths = std::iter::once(Constraint::Min(10))
        .chain(widths.iter().map(|w| Constraint::Length(*w)))
        .collect::<Vec<_>>();
    let table = Table::new(rows, widths).header(header).block(
        Block::default()
            .borders(Borders::ALL)
            .title(title.to_string()),
    );
    frame.render_widget(table, area);
}

fn draw_apis(frame: &mut Frame, view: &LiveView, area: Rect) {
    draw_api_table(
        frame,
        area,
        " replicas and latency (last step) ",
        &[
            "API", "want", "ready", "pend", "flight", "queue", "p50ms", "p99ms",
        ],
        &[4, 5, 4, 6, 5, 5, 5],
        view.apis.iter().enumerate().map(|(i, a)| {
            (
                i,
                a.name.clone(),
                vec![
                    Cell::from(count(a.desired)),
                    Cell::from(count(a.ready)),
                    Cell::from(count(a.pending)),
                    Cell::from(format!("{:.0}", a.in_flight)),
                    Cell::from(count(a.queue)),
                    Cell::from(ms(a.p50_ms)),
                    Cell::from(ms(a.p99_ms)),
                ],
            )
        }),
    );
}

/// The LLM APIs' engines: sequences running and waiting and KV-cache usage at the last sample,
/// TTFT p99 of the last step and ITL p99 of the run so far.
fn draw_llm(frame: &mut Frame, view: &LiveView, area: Rect) {
    draw_api_table(
        frame,
        area,
        " LLM engines (ttft99 last step, itl99 so far, ms) ",
        &["LLM API", "run", "wait", "KV%", "ttft99", "itl99"],
        &[5, 5, 4, 6, 5],
        view.apis.iter().enumerate().filter_map(|(i, a)| {
            let l = a.llm.as_ref()?;
            Some((
                i,
                a.name.clone(),
                vec![
                    Cell::from(count(l.running)),
                    Cell::from(count(l.waiting)),
                    Cell::from(count(l.kv_usage.map(|u| 100.0 * u))),
                    Cell::from(ms(l.ttft_p99_ms)),
                    Cell::from(ms(l.itl_p99_ms)),
                ],
            ))
        }),
    );
}

/// Each API's tenants over the last step: rates, refusals and p99, one row per tenant in its
/// API's colour.
fn draw_tenants(frame: &mut Frame, view: &LiveView, area: Rect) {
    draw_api_table(
        frame,
        area,
        " tenants (last step) ",
        &["API/tenant", "req/s", "ok/s", "refused", "p99ms"],
        &[6, 6, 7, 6],
        view.apis.iter().enumerate().flat_map(|(i, a)| {
            a.tenants.iter().map(move |t| {
                (
                    i,
                    format!("{}/{}", a.name, t.name),
                    vec![
                        Cell::from(count(t.rps)),
                        Cell::from(count(t.throughput_rps)),
                        Cell::from(count(t.rejected)),
                        Cell::from(ms(t.p99_ms)),
                    ],
                )
            })
        }),
    );
}

/// A load test's API row: what the client measures (rates, its own in-flight, latency), not
/// the server's replicas or queue.
fn draw_load_apis(frame: &mut Frame, view: &LiveView, load: &LoadPanel, area: Rect) {
    draw_api_table(
        frame,
        area,
        " client side (last second) ",
        &[
            "API", "sent/s", "2xx/s", "503/s", "flight", "p50ms", "p99ms",
        ],
        &[6, 6, 6, 6, 5, 5],
        view.apis.iter().enumerate().map(|(i, a)| {
            (
                i,
                a.name.clone(),
                vec![
                    Cell::from(a.rps.last().map_or("–".to_string(), u64::to_string)),
                    Cell::from(load.completed_last_s.to_string()),
                    Cell::from(load.rejected_last_s.to_string()).style(
                        if load.rejected_last_s > 0 {
                            Style::default().fg(Color::LightRed)
                        } else {
                            Style::default()
                        },
                    ),
                    Cell::from(format!("{:.0}", a.in_flight)),
                    Cell::from(ms(a.p50_ms)),
                    Cell::from(ms(a.p99_ms)),
                ],
            )
        }),
    );
}

/// A load test's totals, and a plain statement of what it cannot see.
fn draw_load_client(frame: &mut Frame, load: &LoadPanel, area: Rect) {
    let share = |n: u64| {
        if load.sent == 0 {
            String::new()
        } else {
            format!(" ({:.1}%)", 100.0 * n as f64 / load.sent as f64)
        }
    };
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let line = |label: &str, value: String| {
        Line::from(vec![
            Span::styled(format!("{label:<22}"), bold),
            Span::raw(value),
        ])
    };
    let mut lines = vec![
        line("sent", load.sent.to_string()),
        line(
            "completed (2xx)",
            format!("{}{}", load.completed, share(load.completed)),
        ),
        line(
            "rejected (503)",
            format!("{}{}", load.rejected, share(load.rejected)),
        ),
        line(
            "timed out or failed",
            format!("{}{}", load.failed, share(load.failed)),
        ),
        line("sent late", load.late.to_string()),
        line("in flight (client)", load.in_flight.to_string()),
        Line::raw(""),
    ];
    lines.push(Line::styled(
        "Replicas, queues and nodes are not measured by loadgen: it sees only the answers. \
         The server's /metrics (simctl serve) or `simctl autoscale` show them.",
        Style::default().fg(Color::DarkGray),
    ));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(ratatui::widgets::Wrap { trim: true })
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" load generator totals "),
            ),
        area,
    );
}

fn draw_nodes(frame: &mut Frame, view: &LiveView, area: Rect) {
    let interrupted = |group: &str| {
        view.events
            .iter()
            .any(|(_, kind, msg)| kind.contains("interrupt") && msg.starts_with(group))
    };
    let rows = view.groups.iter().map(|(name, instance, spot, nodes)| {
        let flag = if interrupted(name) {
            " ⚡ interrupted"
        } else {
            ""
        };
        Row::new(vec![
            name.clone(),
            instance.clone(),
            if *spot {
                "spot".into()
            } else {
                "on-demand".into()
            },
            format!("{nodes}{flag}"),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Min(10),
            Constraint::Length(14),
            Constraint::Length(10),
            Constraint::Min(6),
        ],
    )
    .header(
        Row::new(vec!["node group", "instance", "capacity", "nodes"])
            .style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .block(Block::default().borders(Borders::ALL).title(" nodes "));
    frame.render_widget(table, area);
}

fn draw_events(frame: &mut Frame, view: &LiveView, area: Rect) {
    let height = area.height.saturating_sub(2) as usize;
    let lines: Vec<Line> = view
        .events
        .iter()
        .skip(view.events.len().saturating_sub(height))
        .map(|(t, kind, msg)| {
            Line::from(vec![
                Span::styled(clock(*t), Style::default().fg(Color::DarkGray)),
                Span::raw(" "),
                Span::styled(format!("{kind:<10}"), Style::default().fg(Color::Yellow)),
                Span::raw(format!(" {msg}")),
            ])
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" events ")),
        area,
    );
}
