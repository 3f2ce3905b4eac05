"""Beam search over the course's translation models, and what chapter 06 measures with it.

The algorithm is the one the chapter teaches and its exercise grades (there over a ``step_fn`` on
token prefixes; here over a model's ``encode`` / ``decode_step``, carrying each hypothesis's decoder
state instead of re-reading its prefix):

- the beam starts as one hypothesis, <bos>, log-probability 0;
- at each step every live hypothesis is extended by every token; of these candidates the k best by
  log-probability are kept, k = B minus the hypotheses finished so far; a kept candidate that ends in
  <eos> is finished (the beam narrows by one), the others are the next step's live beam;
- the search stops when nothing is live or after ``max_len`` steps (live hypotheses then finish as
  they are); the finished ones are ranked by the length-normalised score log P / T^α.

B = 1 is greedy decoding. The measurements (B and α swept on the dev set, the error analysis, the
chosen setting on the test set) are run once by ``python -m coursekit.beam measure`` and shipped under
``coursekit/data/beam/``; the chapter reads them.
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from coursekit import seq2seq, tables
from coursekit import translation as tr

RESULTS = Path(__file__).resolve().parent / "data" / "beam"
SWEEP_PATH = RESULTS / "sweep.csv"
ERRORS_PATH = RESULTS / "error_analysis.tsv"
TEST_PATH = RESULTS / "test.csv"
TEST_OUTPUTS_PATH = RESULTS / "test_outputs.tsv"
MODEL = "attention-additive"  # chapter 05's model
WIDTHS = (1, 2, 3, 5, 10, 20)
ALPHAS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
SWEEP_ALPHA = 0.6  # the widths are swept at this alpha and at 0
SWEEP_WIDTH = 5  # the alphas are swept at this width
BLAME_WIDTHS = (1, 5, 20)
EXAMPLE_SETTING = (SWEEP_WIDTH, SWEEP_ALPHA)


def length_penalty(length, alpha: float, penalty: str = "average"):
    """T^α (``"average"``, the lecture's) or GNMT's ((5 + T) / 6)^α (Wu et al., 2016): the score of a
    hypothesis of T tokens (its <eos> included) is its log-probability divided by this."""
    if penalty == "average":
        return length ** alpha
    if penalty == "gnmt":
        return ((5 + length) / 6) ** alpha
    raise ValueError(f"penalty must be 'average' or 'gnmt', not {penalty!r}")


@dataclass
class Hypothesis:
    tokens: list[int]  # the ids after <bos>, <eos> included when it was produced
    log_prob: float  # log P(tokens | source)
    score: float = 0.0  # log_prob / length_penalty(len(tokens), alpha)

    @property
    def finished(self) -> bool:
        return bool(self.tokens) and self.tokens[-1] == tr.EOS


@dataclass
class Step:
    """What one step of the search kept, for the chapter's pictures of the beam as a tree."""
    parents: list[int]  # for each kept candidate, its live hypothesis of the step before
    tokens: list[int]
    log_probs: list[float]
    finished: list[bool] = field(default_factory=list)


def _rows(state, index: torch.Tensor):
    """The decoder state of the hypotheses ``index``: a tensor (N, H) or a tuple of them."""
    if isinstance(state, torch.Tensor):
        return state[index]
    return tuple(part[index] for part in state)


@torch.no_grad()
def beam_search(model: seq2seq.Translator, source_ids: Sequence[int], beam_width: int,
                max_len: int | None = None, alpha: float = 0.0, penalty: str = "average",
                trace: list[Step] | None = None) -> list[Hypothesis]:
    """Beam search for one source sentence (token ids without specials; <eos> is appended, as in
    training). max_len: the most target tokens, 2 S + 10 by default. Returns the finished hypotheses,
    at most ``beam_width``, best score first. ``trace``, a list, receives one ``Step`` per step."""
    device = next(model.parameters()).device
    src = tr.pad([list(source_ids)]).to(device)  # (1, S)
    max_len = max_len or 2 * src.size(1) + 10
    memory, state = model.encode(src)
    mask = src != model.pad_id
    live = [[]]  # the tokens of each live hypothesis
    live_log_probs = torch.zeros(1, device=device)  # (L,)
    prev = torch.tensor([tr.BOS], device=device)
    finished: list[Hypothesis] = []
    for _ in range(max_len):
        n = prev.size(0)
        logits, state = model.decode_step(prev, state, memory.expand(n, -1, -1), mask.expand(n, -1))
        candidates = live_log_probs[:, None] + torch.log_softmax(logits.float(), dim=-1)  # (L, V)
        k = min(beam_width - len(finished), candidates.numel())
        best, flat = candidates.flatten().topk(k)
        parents, tokens = flat // candidates.size(1), flat % candidates.size(1)
        ends = tokens == tr.EOS
        if trace is not None:
            trace.append(Step(parents.tolist(), tokens.tolist(), best.tolist(), ends.tolist()))
        for p, t, lp in zip(parents[ends].tolist(), tokens[ends].tolist(), best[ends].tolist()):
            finished.append(Hypothesis(live[p] + [t], lp))
        keep = ~ends
        live = [live[p] + [t] for p, t in zip(parents[keep].tolist(), tokens[keep].tolist())]
        if not live:
            break
        live_log_probs, prev = best[keep], tokens[keep]
        state = _rows(state, parents[keep])
    else:  # max_len reached: the live hypotheses finish as they are
        finished += [Hypothesis(t, lp) for t, lp in zip(live, live_log_probs.tolist())]
    for h in finished:
        h.score = h.log_prob / length_penalty(len(h.tokens), alpha, penalty)
    return sorted(finished, key=lambda h: h.score, reverse=True)


@torch.no_grad()
def sequence_log_probs(model: seq2seq.Translator, sources: Sequence[Sequence[int]],
                       targets: Sequence[Sequence[int]], batch_size: int = 64) -> list[float]:
    """log P(y | x) of each target (ids without specials; its <eos> is scored too) given its source,
    with teacher forcing: the scores the error analysis compares a reference's with."""
    device = next(model.parameters()).device
    out: list[float] = []
    for start in range(0, len(sources), batch_size):
        src = tr.pad([list(s) for s in sources[start:start + batch_size]]).to(device)
        tgt_out = tr.pad(targets[start:start + batch_size]).to(device)  # (B, T): y_1 .. y_T = <eos>
        tgt_in = torch.cat([torch.full_like(tgt_out[:, :1], tr.BOS), tgt_out[:, :-1]], dim=1)
        log_p = torch.log_softmax(model(src, tgt_in).float(), dim=-1).gather(-1, tgt_out[..., None])[..., 0]
        out += (log_p * (tgt_out != tr.PAD)).sum(dim=1).tolist()
    return out


# ------------------------------------------------------------------------------------ measurements

def decode(model: seq2seq.Translator, sources: Sequence[Sequence[int]], beam_width: int, alpha: float,
           penalty: str = "average") -> list[Hypothesis]:
    """The best hypothesis of each source."""
    return [beam_search(model, s, beam_width, alpha=alpha, penalty=penalty)[0] for s in sources]


def text(h: Hypothesis) -> str:
    return tr.decode(torch.tensor([h.tokens]))[0]


def corpus_scores(hyps: Sequence[Hypothesis], references: Sequence[str]) -> dict:
    """BLEU (sacreBLEU's, as every chapter reports it), its length ratio (output words / reference
    words: what its brevity penalty reads), the mean log-probability and the mean length in tokens
    of the chosen hypotheses."""
    bleu = tr.bleu([text(h) for h in hyps], references)
    return {"bleu": bleu.score, "length_ratio": bleu.sys_len / bleu.ref_len,
            "mean_log_prob": sum(h.log_prob for h in hyps) / len(hyps),
            "mean_tokens": sum(len(h.tokens) for h in hyps) / len(hyps)}


def sweep_settings() -> list[tuple[int, float, str]]:
    """(B, α, penalty): every width at α = 0 and at ``SWEEP_ALPHA``, every α at ``SWEEP_WIDTH``
    with the lecture's penalty T^α and with GNMT's."""
    settings = [(b, a, "average") for a in (0.0, SWEEP_ALPHA) for b in WIDTHS]
    settings += [(SWEEP_WIDTH, a, p) for p in ("average", "gnmt") for a in ALPHAS]
    return list(dict.fromkeys(settings))


TEXT_COLUMNS = ("hypothesis", "reference", "source", "greedy", "beam", "label", "penalty")


def read_table(path: Path) -> list[dict]:
    """One of this chapter's results files back as dicts, numbers as numbers."""
    return tables.read_table(path, TEXT_COLUMNS)


def blame_label(reference: Sequence[int], hypothesis: Hypothesis, reference_log_prob: float, alpha: float,
                penalty: str = "average") -> str:
    """The lecture's error analysis for one sentence: "none" when the search found the reference,
    "search" when the model scores the reference higher than what the search returned, else "model"."""
    ref_tokens = list(reference) + [tr.EOS]
    if hypothesis.tokens == ref_tokens:
        return "none"
    ref_score = reference_log_prob / length_penalty(len(ref_tokens), alpha, penalty)
    return "search" if ref_score > hypothesis.score else "model"


def measure(limit: int | None = None, log=print) -> None:
    """Run every measurement the chapter shows and write it under ``RESULTS``."""
    command = "python -m coursekit.beam measure" + (f" --limit {limit}" if limit else "")
    torch.manual_seed(0)
    model, _ = seq2seq.load("bible", model=MODEL)
    dev = tr.split("val")[:limit]
    sources, references = tr.token_ids([p.src for p in dev]), [p.tgt for p in dev]
    reference_ids = tr.token_ids(references)
    reference_log_probs = sequence_log_probs(model, sources, reference_ids)
    rows, errors = [], []
    for beam_width, alpha, penalty in sweep_settings():
        start = time.process_time()
        hyps = decode(model, sources, beam_width, alpha, penalty)
        seconds = time.process_time() - start
        rows.append({"beam_width": beam_width, "alpha": alpha, "penalty": penalty,
                     **corpus_scores(hyps, references), "cpu_seconds": seconds})
        log(rows[-1])
        if penalty == "average" and alpha in (0.0, SWEEP_ALPHA) and beam_width in BLAME_WIDTHS:
            for i, (h, ref, ref_lp) in enumerate(zip(hyps, reference_ids, reference_log_probs)):
                errors.append({"sentence": i, "beam_width": beam_width, "alpha": alpha,
                               "label": blame_label(ref, h, ref_lp, alpha),
                               "hypothesis_log_prob": h.log_prob, "hypothesis_tokens": len(h.tokens),
                               "reference_log_prob": ref_lp, "reference_tokens": len(ref) + 1,
                               # the text of one setting only: the page's examples (and a smaller file)
                               "hypothesis": text(h) if (beam_width, alpha) == EXAMPLE_SETTING else ""})
    tables.write_table(SWEEP_PATH, rows, command)
    tables.write_table(ERRORS_PATH, errors, command)
    chosen = max(rows, key=lambda r: r["bleu"])  # chosen on the dev set, then scored once on the test set
    test = tr.split("test")[:limit]
    test_sources, test_refs = tr.token_ids([p.src for p in test]), [p.tgt for p in test]
    outputs, test_rows = {}, []
    for beam_width, alpha, penalty in ((1, 0.0, "average"), (chosen["beam_width"], chosen["alpha"], chosen["penalty"])):
        start = time.process_time()
        hyps = decode(model, test_sources, beam_width, alpha, penalty)
        outputs[beam_width, alpha, penalty] = [text(h) for h in hyps]
        test_rows.append({"beam_width": beam_width, "alpha": alpha, "penalty": penalty,
                          **corpus_scores(hyps, test_refs), "cpu_seconds": time.process_time() - start})
    paired = tr.paired_bootstrap(*outputs.values(), test_refs)
    for row, key in zip(test_rows, ("a", "b")):
        row.update(bleu_low=paired[key].low, bleu_high=paired[key].high)
    test_rows[1].update(delta_low=paired["delta_low"], delta_high=paired["delta_high"])
    test_rows[0].update(delta_low=0.0, delta_high=0.0)
    log(test_rows)
    tables.write_table(TEST_PATH, test_rows, command)
    # the outputs only: the sources and references are tr.split("test"), in this order
    tables.write_table(TEST_OUTPUTS_PATH, [{"greedy": g, "beam": b} for g, b in zip(*outputs.values())], command)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit.beam", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("measure", help="the B and alpha sweeps, the error analysis and the test scores")
    run.add_argument("--limit", type=int, default=None, help="only the first N sentences of each split")
    run.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    measure(args.limit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
