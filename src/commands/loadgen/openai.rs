//! `simctl loadgen --openai`: when the mode is on, the model to ask for, and each request's
//! token lengths — drawn exactly as the simulator draws them for the same scenario and seed.

use loadgen::{DrawLengths, OpenAi, Target};
use sim::recorded::Tokens;
use sim::scenario::{LlmModel, TokenLengths};
use sim::traffic::Traffic;

use super::{bad, LoadgenArgs};
use crate::commands::Failure;

/// The target's path without query or fragment.
fn target_path(args: &LoadgenArgs) -> &str {
    let path = args.target.split(['?', '#']).next().unwrap_or("");
    path.trim_end_matches('/')
}

/// Whether the run speaks OpenAI: `--openai`, or a target path ending in `/v1/completions` or
/// `/v1/chat/completions` without `--body` or `--users`. The OpenAI-only flags without it are an
/// error.
pub(super) fn mode(args: &LoadgenArgs) -> Result<bool, Failure> {
    let path = target_path(args);
    let implied = args.body.is_none()
        && args.users.is_none()
        && (path.ends_with("/v1/completions") || path.ends_with("/v1/chat/completions"));
    let on = args.openai || implied;
    if !on {
        let given = [
            ("--model", args.model.is_some()),
            ("--input-tokens", args.input_tokens.is_some()),
            ("--output-tokens", args.output_tokens.is_some()),
            ("--input-column", args.input_column.is_some()),
            ("--output-column", args.output_column.is_some()),
            ("--slo-ttft", args.slo_ttft.is_some()),
            ("--slo-itl", args.slo_itl.is_some()),
        ];
        if let Some((flag, _)) = given.iter().find(|(_, set)| *set) {
            return Err(bad(format!(
                "{flag} needs --openai (or a --target ending in /v1/completions or /v1/chat/completions)"
            )));
        }
    }
    for (value, flag) in [
        (args.input_tokens, "--input-tokens"),
        (args.output_tokens, "--output-tokens"),
    ] {
        if value == Some(0) {
            return Err(bad(format!("{flag}: expected at least 1")));
        }
    }
    Ok(on)
}

/// The OpenAI settings of the run: the model (`--model`, else asked of the server) and the
/// goodput objectives.
pub(super) fn settings(
    args: &LoadgenArgs,
    runtime: &tokio::runtime::Runtime,
    target: &Target,
) -> Result<OpenAi, Failure> {
    let model = match &args.model {
        Some(m) => m.clone(),
        None => runtime
            .block_on(loadgen::discover_model(target))
            .map_err(|e| bad(e.to_string()))?,
    };
    Ok(OpenAi {
        model,
        chat: target_path(args).ends_with("/chat/completions"),
        slo_ttft: args.slo_ttft,
        slo_itl: args.slo_itl,
    })
}

/// Each request's prompt and output lengths, per field: the flag if given, else the trace's
/// recorded length, else a draw from the scenario API's distribution on the simulator's own
/// stream (`tokens/{api}`, input then output, drawn only when the trace has no length — as the
/// simulator's `draw_lengths` does), so the load carries the very lengths `simctl run` draws.
pub(super) fn lengths(
    args: &LoadgenArgs,
    llm: Option<&LlmModel>,
    traffic: &Traffic,
    api: &str,
    seed: u64,
) -> Result<DrawLengths, Failure> {
    let (input_column, output_column) = match traffic {
        Traffic::Trace(spec) => (
            spec.options.input_column.is_some(),
            spec.options.output_column.is_some(),
        ),
        _ => (false, false),
    };
    let input_dist = llm.and_then(|m| m.input_tokens.clone());
    let output_dist = llm.and_then(|m| m.output_tokens.clone());
    for (flag, column, dist, what) in [
        (
            args.input_tokens.is_some(),
            input_column,
            input_dist.is_some(),
            "input",
        ),
        (
            args.output_tokens.is_some(),
            output_column,
            output_dist.is_some(),
            "output",
        ),
    ] {
        if !(flag || column || dist) {
            return Err(bad(format!(
                "--openai needs {what} lengths: --{what}-tokens N, a trace's --{what}-column, \
                 or a scenario API whose [apis.llm] has {what}_tokens"
            )));
        }
    }
    Ok(draw_lengths(
        [input_dist, output_dist],
        [args.input_tokens, args.output_tokens],
        sim::rng::stream(seed, &format!("tokens/{api}")),
    ))
}

/// A scenario LLM API's lengths: the trace's, else drawn from its distributions on the
/// simulator's own stream, as `simctl run` draws them (what `simctl validate` sends).
pub(crate) fn scenario_lengths(llm: &LlmModel, api: &str, seed: u64) -> DrawLengths {
    draw_lengths(
        [llm.input_tokens.clone(), llm.output_tokens.clone()],
        [None, None],
        sim::rng::stream(seed, &format!("tokens/{api}")),
    )
}

/// Per field (input, output): `fixed`, else the recorded length, else a draw from `dist`.
fn draw_lengths(
    dist: [Option<TokenLengths>; 2],
    fixed: [Option<u32>; 2],
    mut rng: sim::rng::Stream,
) -> DrawLengths {
    Box::new(move |recorded: Tokens| {
        let mut length = |i: usize, recorded: Option<u32>| {
            let drawn = match (&dist[i], recorded) {
                (_, Some(v)) => v,
                (Some(d), None) => d.sample(&mut rng),
                (None, None) => 1,
            };
            fixed[i].unwrap_or(drawn).max(1)
        };
        let input = length(0, recorded.input);
        let output = length(1, recorded.output);
        (input, output)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn lengths_follow_the_simulators_stream() {
        let input = TokenLengths::LogNormal {
            mu: 5.0,
            sigma: 1.0,
        };
        let output = TokenLengths::Empirical(Arc::new(vec![3, 30, 300]));
        let stream = || sim::rng::stream(9, "tokens/chat");
        let mut rng = stream();
        let expected: Vec<(u32, u32)> = (0..20)
            .map(|_| {
                let i = input.sample(&mut rng);
                (i, output.sample(&mut rng))
            })
            .collect();
        let dist = [Some(input.clone()), Some(output.clone())];
        let mut draw = draw_lengths(dist.clone(), [None, None], stream());
        let got: Vec<(u32, u32)> = (0..20).map(|_| draw(Tokens::default())).collect();
        assert_eq!(got, expected);

        // A recorded length wins and is not drawn; a flag wins over both, and the draws
        // behind it still happen (so the other field stays on the simulator's stream).
        let mut rng = stream();
        let mut draw = draw_lengths(dist.clone(), [None, None], stream());
        let recorded = Tokens {
            input: Some(7),
            output: None,
        };
        assert_eq!(draw(recorded), (7, output.sample(&mut rng)));
        let mut rng = stream();
        let _ = input.sample(&mut rng);
        let mut draw = draw_lengths(dist, [Some(200), None], stream());
        assert_eq!(draw(Tokens::default()), (200, output.sample(&mut rng)));
        let mut draw = draw_lengths([None, None], [None, Some(20)], stream());
        assert_eq!(draw(Tokens::default()), (1, 20));
    }
}
