//! Caption generation: greedy and beam search against open_clip's outputs
//! (`coca-tiny/reference.safetensors`, `coca-tiny/beam.json`), cache equivalence, properties.

use coca_core::burn::tensor::{Device, Tensor, TensorData};
use coca_core::generation::{
    Caption, DecodeStrategy, GenerationConfig, OpenClipBeamSearch, generate,
};
use coca_core::{Coca, Pretrained};
use serde::Deserialize;

use crate::common::{fixture, read_reference, test_device};

fn model_and_embs(device: &Device) -> (Coca, Tensor<3>, Vec<Vec<u32>>) {
    let reference = read_reference(&fixture("coca-tiny/reference.safetensors"));
    let model = Pretrained::load(fixture("coca-tiny").to_str().unwrap(), device)
        .unwrap()
        .model;
    let (ps, pv) = &reference["pixel_values"];
    let pixels = Tensor::from_data(TensorData::new(pv.clone(), ps.clone()), device);
    let embs = model.encode_image(pixels).embs;
    let (gs, gv) = &reference["greedy_tokens"];
    let greedy = gv
        .chunks(gs[1])
        .map(|r| r.iter().map(|&v| v as u32).collect())
        .collect();
    (model, embs, greedy)
}

fn cfg(
    strategy: DecodeStrategy,
    max: usize,
    ignore_eos: bool,
    use_cache: bool,
) -> GenerationConfig {
    GenerationConfig {
        strategy,
        max_new_tokens: max,
        min_new_tokens: 0,
        repetition_penalty: 1.0,
        ignore_eos,
        use_cache,
    }
}

fn beam(k: usize, lp: f32) -> DecodeStrategy {
    DecodeStrategy::Beam {
        num_beams: k,
        length_penalty: lp,
        early_stopping: true,
    }
}

fn open_clip_beam(num_beams: usize, num_beam_groups: usize, eos_token: u32) -> DecodeStrategy {
    DecodeStrategy::OpenClipBeam {
        num_beams,
        num_beam_groups,
        eos_token,
    }
}

#[test]
fn greedy_reproduces_open_clip_tokens() {
    let device = test_device();
    let (model, embs, want) = model_and_embs(&device);
    for use_cache in [true, false] {
        let got = generate(
            &model,
            embs.clone(),
            &[],
            &cfg(DecodeStrategy::Greedy, 10, true, use_cache),
        )
        .unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(w[0], 49406);
            assert_eq!(g.tokens, w[1..].to_vec(), "use_cache={use_cache}");
        }
    }
}

#[test]
fn cached_and_uncached_decoding_agree() {
    let device = test_device();
    let (model, embs, _) = model_and_embs(&device);
    for strategy in [
        DecodeStrategy::Greedy,
        beam(3, 1.0),
        beam(2, 0.0),
        open_clip_beam(4, 2, 49407),
        open_clip_beam(3, 1, 320),
    ] {
        for ignore_eos in [false, true] {
            let a = generate(
                &model,
                embs.clone(),
                &[320],
                &cfg(strategy.clone(), 8, ignore_eos, true),
            )
            .unwrap();
            let b = generate(
                &model,
                embs.clone(),
                &[320],
                &cfg(strategy.clone(), 8, ignore_eos, false),
            )
            .unwrap();
            let ta: Vec<_> = a.iter().map(|c| c.tokens.clone()).collect();
            let tb: Vec<_> = b.iter().map(|c| c.tokens.clone()).collect();
            assert_eq!(ta, tb, "{strategy:?} ignore_eos={ignore_eos}");
            for (x, y) in a.iter().zip(&b) {
                assert!(
                    (x.logprob - y.logprob).abs() < 1e-3,
                    "{} vs {}",
                    x.logprob,
                    y.logprob
                );
            }
        }
    }
}

#[test]
fn one_beam_equals_greedy() {
    let device = test_device();
    let (model, embs, _) = model_and_embs(&device);
    for ignore_eos in [false, true] {
        let g = generate(
            &model,
            embs.clone(),
            &[],
            &cfg(DecodeStrategy::Greedy, 9, ignore_eos, true),
        )
        .unwrap();
        let b = generate(
            &model,
            embs.clone(),
            &[],
            &cfg(beam(1, 1.0), 9, ignore_eos, true),
        )
        .unwrap();
        assert_eq!(
            g.iter().map(|c| &c.tokens).collect::<Vec<_>>(),
            b.iter().map(|c| &c.tokens).collect::<Vec<_>>()
        );
    }
}

#[test]
fn sampling_is_seeded_and_rows_stop_at_eot() {
    let device = test_device();
    let (model, embs, _) = model_and_embs(&device);
    let s = |seed| DecodeStrategy::Sample {
        top_k: Some(50),
        top_p: Some(0.95),
        temperature: 1.0,
        seed,
    };
    let a = generate(&model, embs.clone(), &[], &cfg(s(7), 12, false, true)).unwrap();
    let b = generate(&model, embs.clone(), &[], &cfg(s(7), 12, false, true)).unwrap();
    assert_eq!(a, b);
    for c in &a {
        if let Some(p) = c.tokens.iter().position(|&t| t == 49407) {
            assert_eq!(
                p,
                c.tokens.len() - 1,
                "nothing after the end token: {:?}",
                c.tokens
            );
        }
    }
}

#[test]
fn too_long_requests_are_rejected() {
    let device = test_device();
    let (model, embs, _) = model_and_embs(&device);
    let e = generate(
        &model,
        embs,
        &[],
        &cfg(DecodeStrategy::Greedy, 200, false, true),
    )
    .unwrap_err();
    assert!(e.to_string().contains("context length"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// open_clip beam search against `coca-tiny/beam.json`.

/// A decision whose recorded gap (`decision_margin`) is below this is a knife edge that a float32
/// implementation with another summation order may resolve the other way: a mismatch there is
/// set aside (and printed), every other one fails.
const KNIFE_EDGE: f64 = 1e-4;
/// Relative tolerance of the winning hypothesis score.
const SCORE_RTOL: f32 = 1e-4;

#[derive(Debug, Deserialize)]
struct BeamFixture {
    runs: Vec<BeamRun>,
}

#[derive(Debug, Deserialize)]
struct BeamRun {
    name: String,
    effective_arguments: OpenClipArgs,
    group_size: usize,
    output_shape: [usize; 2],
    outputs: Vec<BeamOutput>,
    with_min_seq_len_plus_1: MinSeqLenPlusOne,
}

/// `generate`'s effective arguments (the others are not used by beam search).
#[derive(Debug, Deserialize)]
struct OpenClipArgs {
    seq_len: usize,
    min_seq_len: usize,
    num_beams: usize,
    num_beam_groups: usize,
    repetition_penalty: f32,
    eos_token_id: u32,
    pad_token_id: u32,
    sot_token_id: u32,
    fixed_output_length: bool,
    generation_type: String,
}

#[derive(Debug, Deserialize)]
struct BeamOutput {
    image: String,
    ids: Vec<u32>,
    ids_alone: Vec<u32>,
    ids_until_eos: Vec<u32>,
    ends_with_eos: bool,
    sequence_score: f32,
    decision_margin: Margin,
}

#[derive(Debug, Deserialize)]
struct Margin {
    min: f64,
    at_length: Option<usize>,
    decision: String,
}

#[derive(Debug, Deserialize)]
struct MinSeqLenPlusOne {
    min_seq_len: usize,
    ids: Vec<Vec<u32>>,
    decision_margin_min: Vec<f64>,
}

fn beam_fixture() -> BeamFixture {
    let path = fixture("coca-tiny/beam.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

impl OpenClipArgs {
    fn search(&self, min_seq_len: usize) -> OpenClipBeamSearch {
        assert_eq!(self.generation_type, "beam_search");
        assert_eq!(
            self.sot_token_id, 49406,
            "our searches start from the CLIP start token"
        );
        OpenClipBeamSearch {
            seq_len: self.seq_len,
            min_seq_len,
            num_beams: self.num_beams,
            num_beam_groups: self.num_beam_groups,
            repetition_penalty: self.repetition_penalty,
            eos_token_id: self.eos_token_id,
        }
    }

    fn config(&self, min_seq_len: usize, use_cache: bool) -> GenerationConfig {
        GenerationConfig {
            use_cache,
            ..self.search(min_seq_len).config().unwrap()
        }
    }
}

/// What open_clip's `generate` returns for these captions: `[sot] + tokens` right-padded with
/// `pad` to the longest row (to `seq_len` with `fixed_output_length`).
fn open_clip_rows(captions: &[Caption], args: &OpenClipArgs) -> Vec<Vec<u32>> {
    let mut rows: Vec<Vec<u32>> = captions
        .iter()
        .map(|c| {
            std::iter::once(args.sot_token_id)
                .chain(c.tokens.iter().copied())
                .collect()
        })
        .collect();
    let mut width = rows.iter().map(Vec::len).max().unwrap_or(0);
    if args.fixed_output_length {
        width = width.max(args.seq_len);
    }
    for r in &mut rows {
        r.resize(width, args.pad_token_id);
    }
    rows
}

/// A row cut after its first end token (open_clip pads only after it).
fn until_eos(row: &[u32], eos: u32) -> &[u32] {
    match row[1..].iter().position(|&t| t == eos) {
        Some(p) => &row[..p + 2],
        None => row,
    }
}

/// Mismatches that fail the test and knife edges set aside, over all comparisons.
#[derive(Default)]
struct Verdict {
    failures: Vec<String>,
    set_aside: Vec<String>,
    /// Largest relative score difference seen, and how many scores were compared.
    worst_score_rel: f32,
    scores: usize,
}

impl Verdict {
    /// One image's ids (sot first, cut after the end token). A mismatch is set aside only when
    /// the recorded `margin` is below [`KNIFE_EDGE`], and then the ids before the recorded
    /// decision (`at_length`, sot counted) must still agree.
    fn ids(
        &mut self,
        what: &str,
        got: &[u32],
        want: &[u32],
        margin: f64,
        at: Option<usize>,
    ) -> bool {
        if got == want {
            return true;
        }
        let diverge = got.iter().zip(want).take_while(|(a, b)| a == b).count();
        let recorded = if margin.is_finite() {
            format!("recorded decision margin {margin:.3e} at length {at:?}")
        } else {
            "no recorded margin".to_string()
        };
        let msg = format!(
            "{what}: ids differ from position {diverge} ({recorded})\n  got  {got:?}\n  want {want:?}"
        );
        let before_decision = at.map_or(0, |l| l.saturating_sub(1));
        if margin < KNIFE_EDGE && diverge >= before_decision {
            self.set_aside.push(msg);
        } else {
            self.failures.push(msg);
        }
        false
    }

    fn score(&mut self, what: &str, got: f32, want: f32) {
        let rel = (got - want).abs() / want.abs();
        let ok = got.is_finite() && rel <= SCORE_RTOL;
        self.worst_score_rel = self.worst_score_rel.max(rel);
        self.scores += 1;
        if !ok {
            self.failures
                .push(format!("{what}: score {got} vs open_clip's {want}"));
        }
    }

    fn finish(self) {
        println!(
            "{} scores compared, largest relative difference {:.3e}; {} knife edge(s) set aside",
            self.scores,
            self.worst_score_rel,
            self.set_aside.len()
        );
        for s in &self.set_aside {
            println!("SET ASIDE (knife edge below {KNIFE_EDGE:e}): {s}");
        }
        assert!(
            self.failures.is_empty(),
            "{} mismatch(es) with open_clip's beam search:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

/// Batched ids of one call against the recorded rows; the whole matrix (widths and padding
/// included) must be equal unless an image was set aside.
fn check_batched(
    v: &mut Verdict,
    what: &str,
    captions: &[Caption],
    args: &OpenClipArgs,
    want: &[Vec<u32>],
    margins: &[(f64, Option<usize>)],
) -> Vec<Vec<u32>> {
    let got = open_clip_rows(captions, args);
    assert_eq!(got.len(), want.len(), "{what}: images");
    let mut all_equal = true;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let (m, at) = margins[i];
        all_equal &= v.ids(
            &format!("{what}, image {i}"),
            until_eos(g, args.eos_token_id),
            until_eos(w, args.eos_token_id),
            m,
            at,
        );
    }
    if all_equal && got != want {
        v.failures.push(format!(
            "{what}: same captions but another layout\n  got  {got:?}\n  want {want:?}"
        ));
    }
    got
}

fn run_fixture_setting(run: &BeamRun, model: &Coca, embs: &Tensor<3>, v: &mut Verdict) {
    let args = &run.effective_arguments;
    assert_eq!(
        args.num_beams / args.num_beam_groups,
        run.group_size,
        "{}",
        run.name
    );
    let margins: Vec<(f64, Option<usize>)> = run
        .outputs
        .iter()
        .map(|o| (o.decision_margin.min, o.decision_margin.at_length))
        .collect();
    let want: Vec<Vec<u32>> = run.outputs.iter().map(|o| o.ids.clone()).collect();
    for use_cache in [true, false] {
        let what = format!("{} (batched, use_cache={use_cache})", run.name);
        let got = generate(
            model,
            embs.clone(),
            &[],
            &args.config(args.min_seq_len, use_cache),
        )
        .unwrap();
        let rows = check_batched(v, &what, &got, args, &want, &margins);
        assert_eq!(rows.len(), run.output_shape[0]);
        for (i, (c, o)) in got.iter().zip(&run.outputs).enumerate() {
            let (m, at) = margins[i];
            let label = format!("{what}, image {i} ({})", o.image);
            let got_ids = std::iter::once(args.sot_token_id).chain(c.tokens.iter().copied());
            if v.ids(
                &label,
                &got_ids.collect::<Vec<_>>(),
                &o.ids_until_eos,
                m,
                at,
            ) {
                assert_eq!(c.tokens.last() == Some(&args.eos_token_id), o.ends_with_eos);
                v.score(&label, c.score, o.sequence_score);
            }
        }
    }
    // Each image alone (a batch of one).
    let [b, m, w] = embs.dims();
    for (i, o) in run.outputs.iter().enumerate() {
        let one = embs.clone().slice([i..i + 1, 0..m, 0..w]);
        let got = generate(model, one, &[], &args.config(args.min_seq_len, true)).unwrap();
        let label = format!("{} (alone), image {i} ({})", run.name, o.image);
        let ids: Vec<u32> = open_clip_rows(&got, args).remove(0);
        let (margin, at) = margins[i];
        if v.ids(&label, &ids, &o.ids_alone, margin, at) {
            v.score(&label, got[0].score, o.sequence_score);
        }
    }
    assert_eq!(b, run.outputs.len());
    // min_seq_len + 1 (the third setting moves it onto the step where one image's end token
    // was still allowed).
    let plus = &run.with_min_seq_len_plus_1;
    assert_eq!(plus.min_seq_len, args.min_seq_len + 1);
    let got = generate(
        model,
        embs.clone(),
        &[],
        &args.config(plus.min_seq_len, true),
    )
    .unwrap();
    let margins: Vec<(f64, Option<usize>)> = plus
        .decision_margin_min
        .iter()
        .map(|&m| (m, None))
        .collect();
    let what = format!("{} (min_seq_len {})", run.name, plus.min_seq_len);
    check_batched(v, &what, &got, args, &plus.ids, &margins);
}

#[test]
fn open_clip_beam_search_reproduces_open_clip() {
    let device = test_device();
    let (model, embs, _) = model_and_embs(&device);
    let fixture = beam_fixture();
    assert_eq!(fixture.runs.len(), 3);
    let mut verdict = Verdict::default();
    for run in &fixture.runs {
        assert!(
            run.outputs
                .iter()
                .all(|o| !o.decision_margin.decision.is_empty()),
            "{}: decision_margin without a decision",
            run.name
        );
        run_fixture_setting(run, &model, &embs, &mut verdict);
    }
    verdict.finish();
}

#[test]
fn open_clip_beam_groups_are_copies_and_one_beam_per_group_is_greedy() {
    let device = test_device();
    let (model, embs, _) = model_and_embs(&device);
    let with = |strategy: DecodeStrategy, min: usize| GenerationConfig {
        strategy,
        max_new_tokens: 12,
        min_new_tokens: min,
        repetition_penalty: 1.3,
        ignore_eos: false,
        use_cache: true,
    };
    let grouped = generate(
        &model,
        embs.clone(),
        &[],
        &with(open_clip_beam(6, 3, 320), 3),
    )
    .unwrap();
    let single = generate(
        &model,
        embs.clone(),
        &[],
        &with(open_clip_beam(2, 1, 320), 3),
    )
    .unwrap();
    for (g, s) in grouped.iter().zip(&single) {
        assert_eq!(g.tokens, s.tokens);
        assert!(
            (g.score - s.score).abs() < 1e-5,
            "{} vs {}",
            g.score,
            s.score
        );
    }
    // One beam per group: greedy argmax (the end token here is the CLIP one, greedy's).
    let per_group = generate(
        &model,
        embs.clone(),
        &[],
        &with(open_clip_beam(3, 3, 49407), 2),
    )
    .unwrap();
    let greedy = generate(&model, embs, &[], &with(DecodeStrategy::Greedy, 2)).unwrap();
    for (b, g) in per_group.iter().zip(&greedy) {
        assert_eq!(b.tokens, g.tokens);
        assert!(
            (b.logprob - g.logprob).abs() < 1e-3,
            "{} vs {}",
            b.logprob,
            g.logprob
        );
    }
}

#[test]
fn open_clip_beam_search_rejects_what_open_clip_rejects() {
    let device = test_device();
    let (model, embs, _) = model_and_embs(&device);
    let e = OpenClipBeamSearch {
        seq_len: 5,
        min_seq_len: 5,
        ..Default::default()
    }
    .config()
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("seq_len (5) must be larger than min_seq_len (5)"),
        "{e}"
    );
    for (beams, groups) in [(6, 4), (0, 1), (2, 0)] {
        let cfg = cfg(open_clip_beam(beams, groups, 49407), 4, false, true);
        let e = generate(&model, embs.clone(), &[], &cfg).unwrap_err();
        assert!(e.to_string().contains("num_beam_groups"), "{e}");
    }
    let cfg = cfg(open_clip_beam(2, 1, 49408), 4, false, true);
    let e = generate(&model, embs, &[], &cfg).unwrap_err();
    assert!(
        e.to_string()
            .contains("end token 49408 is outside the vocabulary"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// A transcription of open_clip's beam search, checked against `beam.json`, for the cases the
// fixture does not reach (end tokens that win often: hypotheses competing, groups filling up
// and stopping before `seq_len`, end tokens ranked below the group size).

/// What the transcription saw happen (to check that a setting exercises those paths).
#[derive(Debug, Default, Clone, Copy)]
struct TranscriptionEvents {
    hypotheses_added: usize,
    eos_below_group_size_skipped: usize,
    hypotheses_evicted: usize,
    groups_done_before_seq_len: usize,
}

/// Hypotheses of one (image, group), as transformers' `BeamHypotheses` keeps them.
struct TranscribedHyps {
    beams: Vec<(f64, Vec<u32>)>,
    worst_score: f64,
}

/// open_clip 3.3 `CoCa._generate_beamsearch` with transformers 4.56 `BeamSearchScorer`
/// (`length_penalty` 1, `do_early_stopping` False), `MinLengthLogitsProcessor` and
/// `RepetitionPenaltyLogitsProcessor`, written out step by step on full forward passes (no key/
/// value cache; every beam of every group stays in the batch; done groups are fed pad tokens).
/// Returns `generate()`'s rows and the winning scores.
fn open_clip_transcription(
    model: &Coca,
    embs: &Tensor<3>,
    a: &OpenClipBeamSearch,
    pad: u32,
    events: &mut TranscriptionEvents,
) -> (Vec<Vec<u32>>, Vec<f32>) {
    let device = embs.device();
    let batch = embs.dims()[0];
    let (num_beams, groups) = (a.num_beams, a.num_beam_groups);
    let gs = num_beams / groups;
    let (sot, eos) = (49406u32, a.eos_token_id);
    let rep: Vec<i64> = (0..batch * num_beams)
        .map(|r| (r / num_beams) as i64)
        .collect();
    let image = embs.clone().select(
        0,
        Tensor::from_data(TensorData::new(rep, [batch * num_beams]), &device),
    );
    let mut input_ids = vec![vec![sot]; batch * num_beams];
    let mut beam_scores: Vec<f32> = (0..batch * num_beams)
        .map(|r| if r % gs == 0 { 0.0 } else { -1e9 })
        .collect();
    let mut hyps: Vec<TranscribedHyps> = (0..batch * groups)
        .map(|_| TranscribedHyps {
            beams: Vec::new(),
            worst_score: 1e9,
        })
        .collect();
    let mut done = vec![false; batch * groups];
    let add = |h: &mut TranscribedHyps,
               ids: Vec<u32>,
               sum: f64,
               len: usize,
               ev: &mut TranscriptionEvents| {
        let score = sum / len as f64;
        if h.beams.len() < gs || score > h.worst_score {
            ev.hypotheses_added += 1;
            h.beams.push((score, ids));
            if h.beams.len() > gs {
                let mut sorted: Vec<(f64, usize)> =
                    h.beams.iter().enumerate().map(|(i, b)| (b.0, i)).collect();
                sorted.sort_by(|x, y| x.partial_cmp(y).unwrap());
                h.beams.remove(sorted[0].1);
                h.worst_score = sorted[1].0;
                ev.hypotheses_evicted += 1;
            } else {
                h.worst_score = h.worst_score.min(score);
            }
        }
    };
    loop {
        let l = input_ids[0].len();
        let text = model.encode_text(tokens_of(&input_ids, &device));
        let logits = model.decode(image.clone(), text.token_embs);
        let [n, _, vocab] = logits.dims();
        let last: Vec<f32> = logits
            .slice([0..n, l - 1..l, 0..vocab])
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        let cur_len = l + 1;
        let mut current_tokens = vec![0u32; batch * num_beams];
        for g in 0..groups {
            let idx: Vec<usize> = (0..batch)
                .flat_map(|b| (0..gs).map(move |i| b * num_beams + g * gs + i))
                .collect();
            let group_ids: Vec<Vec<u32>> = idx.iter().map(|&r| input_ids[r].clone()).collect();
            let mut next_scores = vec![0f32; batch * gs];
            let mut next_tokens = vec![0u32; batch * gs];
            let mut next_indices = vec![0usize; batch * gs];
            for b in 0..batch {
                let bg = b * groups + g;
                if done[bg] {
                    for k in 0..gs {
                        next_tokens[b * gs + k] = pad;
                    }
                    continue;
                }
                let mut flat: Vec<(f32, usize)> = Vec::with_capacity(gs * vocab);
                for i in 0..gs {
                    let row = &group_ids[b * gs + i];
                    let r = idx[b * gs + i];
                    let mut s = last[r * vocab..(r + 1) * vocab].to_vec();
                    if row.len() < a.min_seq_len {
                        s[eos as usize] = f32::NEG_INFINITY;
                    }
                    let gathered: Vec<f32> = row.iter().map(|&t| s[t as usize]).collect();
                    for (&t, v) in row.iter().zip(gathered) {
                        s[t as usize] = if v < 0.0 {
                            v * a.repetition_penalty
                        } else {
                            v / a.repetition_penalty
                        };
                    }
                    flat.extend(
                        s.iter()
                            .enumerate()
                            .map(|(k, &v)| (v + beam_scores[r], i * vocab + k)),
                    );
                }
                let k2 = 2 * gs;
                flat.select_nth_unstable_by(k2 - 1, |x, y| y.0.total_cmp(&x.0));
                flat.truncate(k2);
                flat.sort_by(|x, y| y.0.total_cmp(&x.0));
                let mut beam_idx = 0;
                for (rank, &(score, id)) in flat.iter().enumerate() {
                    let (beam, token) = (id / vocab, (id % vocab) as u32);
                    let batch_beam_idx = b * gs + beam;
                    if token == eos {
                        if rank >= gs {
                            events.eos_below_group_size_skipped += 1;
                            continue;
                        }
                        let ids = group_ids[batch_beam_idx].clone();
                        add(&mut hyps[bg], ids, f64::from(score), cur_len, events);
                    } else {
                        next_scores[b * gs + beam_idx] = score;
                        next_tokens[b * gs + beam_idx] = token;
                        next_indices[b * gs + beam_idx] = batch_beam_idx;
                        beam_idx += 1;
                    }
                    if beam_idx == gs {
                        break;
                    }
                }
                assert_eq!(beam_idx, gs, "transformers raises here");
                let h = &hyps[bg];
                let best = f64::from(flat[0].0);
                if h.beams.len() >= gs && h.worst_score >= best / cur_len as f64 {
                    done[bg] = true;
                    if cur_len < a.seq_len {
                        events.groups_done_before_seq_len += 1;
                    }
                }
            }
            for (k, &r) in idx.iter().enumerate() {
                beam_scores[r] = next_scores[k];
                input_ids[r] = group_ids[next_indices[k]].clone();
                current_tokens[r] = next_tokens[k];
            }
        }
        for (row, t) in input_ids.iter_mut().zip(current_tokens) {
            row.push(t);
        }
        if done.iter().all(|&d| d) || input_ids[0].len() >= a.seq_len {
            break;
        }
    }
    // finalize
    for (bg, h) in hyps.iter_mut().enumerate() {
        if done[bg] {
            continue;
        }
        for i in 0..gs {
            let r = bg * gs + i;
            let len = input_ids[r].len();
            add(
                h,
                input_ids[r].clone(),
                f64::from(beam_scores[r]),
                len,
                events,
            );
        }
    }
    let mut best = Vec::new();
    for b in 0..batch {
        let mut all: Vec<&(f64, Vec<u32>)> = hyps[b * groups..(b + 1) * groups]
            .iter()
            .flat_map(|h| &h.beams)
            .collect();
        all.sort_by(|x, y| x.0.partial_cmp(&y.0).unwrap());
        best.push(all.pop().unwrap().clone());
    }
    let lengths: Vec<usize> = best.iter().map(|h| h.1.len()).collect();
    let width = (lengths.iter().max().unwrap() + 1).min(a.seq_len);
    let rows = best
        .iter()
        .map(|(_, ids)| {
            let mut row = ids.clone();
            if row.len() < width {
                row.push(eos);
            }
            row.resize(width, pad);
            row
        })
        .collect();
    (rows, best.iter().map(|h| h.0 as f32).collect())
}

fn tokens_of(rows: &[Vec<u32>], device: &Device) -> Tensor<2, coca_core::burn::tensor::Int> {
    let data: Vec<i64> = rows.iter().flatten().map(|&t| i64::from(t)).collect();
    Tensor::from_data(TensorData::new(data, [rows.len(), rows[0].len()]), device)
}

#[test]
fn the_transcription_reproduces_beam_json() {
    let device = test_device();
    let (model, embs, _) = model_and_embs(&device);
    let mut v = Verdict::default();
    let mut events = TranscriptionEvents::default();
    for run in &beam_fixture().runs {
        let args = &run.effective_arguments;
        for (min_seq_len, want, margins) in [
            (
                args.min_seq_len,
                run.outputs
                    .iter()
                    .map(|o| o.ids.clone())
                    .collect::<Vec<_>>(),
                run.outputs
                    .iter()
                    .map(|o| (o.decision_margin.min, o.decision_margin.at_length))
                    .collect::<Vec<_>>(),
            ),
            (
                run.with_min_seq_len_plus_1.min_seq_len,
                run.with_min_seq_len_plus_1.ids.clone(),
                run.with_min_seq_len_plus_1
                    .decision_margin_min
                    .iter()
                    .map(|&m| (m, None))
                    .collect(),
            ),
        ] {
            let search = args.search(min_seq_len);
            let (rows, scores) =
                open_clip_transcription(&model, &embs, &search, args.pad_token_id, &mut events);
            let what = format!("transcription, {} (min_seq_len {min_seq_len})", run.name);
            let mut all_equal = true;
            for (i, (g, w)) in rows.iter().zip(&want).enumerate() {
                let (m, at) = margins[i];
                all_equal &= v.ids(&format!("{what}, image {i}"), g, w, m, at);
            }
            if min_seq_len == args.min_seq_len {
                for (i, o) in run.outputs.iter().enumerate() {
                    if rows[i] == o.ids {
                        v.score(&format!("{what}, image {i}"), scores[i], o.sequence_score);
                    }
                }
            }
            if all_equal && rows != want {
                v.failures.push(format!(
                    "{what}: same captions but another layout\n  got  {rows:?}\n  want {want:?}"
                ));
            }
        }
    }
    v.finish();
}

#[test]
fn open_clip_beam_search_matches_the_transcription_where_end_tokens_win() {
    let device = test_device();
    let (model, embs, _) = model_and_embs(&device);
    // End tokens the tiny model produces often (41629, 30809, 27801 are frequent in beam.json).
    let settings = [
        (6, 2, 12, 2, 41629, 1.0),
        (4, 1, 10, 3, 30809, 1.3),
        (3, 1, 14, 2, 27801, 1.0),
        (6, 3, 9, 4, 41629, 0.8),
        (5, 1, 12, 1, 5213, 1.0),
        (3, 3, 14, 2, 41629, 1.0),
        (4, 2, 14, 2, 41629, 1.0),
        (2, 1, 16, 2, 30809, 1.0),
    ];
    let mut v = Verdict::default();
    let mut events = TranscriptionEvents::default();
    for (num_beams, num_beam_groups, seq_len, min_seq_len, eos, rep) in settings {
        let search = OpenClipBeamSearch {
            seq_len,
            min_seq_len,
            num_beams,
            num_beam_groups,
            repetition_penalty: rep,
            eos_token_id: eos,
        };
        let what = format!("{search:?}");
        let (want, scores) = open_clip_transcription(&model, &embs, &search, 0, &mut events);
        let got = generate(&model, embs.clone(), &[], &search.config().unwrap()).unwrap();
        let rows: Vec<Vec<u32>> = {
            let mut rows: Vec<Vec<u32>> = got
                .iter()
                .map(|c| {
                    std::iter::once(49406)
                        .chain(c.tokens.iter().copied())
                        .collect()
                })
                .collect();
            let width = rows.iter().map(Vec::len).max().unwrap();
            rows.iter_mut().for_each(|r| r.resize(width, 0));
            rows
        };
        // No recorded margins here: every mismatch fails.
        for (i, (g, w)) in rows.iter().zip(&want).enumerate() {
            if v.ids(&format!("{what}, image {i}"), g, w, f64::INFINITY, None) {
                v.score(&format!("{what}, image {i}"), got[i].score, scores[i]);
            }
        }
        if rows != want && v.failures.is_empty() {
            v.failures
                .push(format!("{what}: layout\n  got  {rows:?}\n  want {want:?}"));
        }
    }
    println!("{events:?}");
    v.finish();
    assert!(events.hypotheses_added > 0, "{events:?}");
    assert!(events.eos_below_group_size_skipped > 0, "{events:?}");
    assert!(events.hypotheses_evicted > 0, "{events:?}");
    assert!(events.groups_done_before_seq_len > 0, "{events:?}");
}
