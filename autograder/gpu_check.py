"""The course on a GPU, in one command: ``make gpu-check`` (``python -m autograder.gpu_check``).

What depends on the device, checked where it runs, with a table at the end:

1. every hidden case of every assignment, computed by the reference on the device (float32, TF32
   where PyTorch uses it), against the CPU float64 expected outputs, under the tolerances the grader
   uses on that device: the largest deviation says how much room the tolerance leaves;
2. a small class per assignment (the reference and the blank release) graded by the real grader,
   where nbgrader can run (``--skip-grading`` leaves it out);
3. every chapter's book page executed top to bottom, timed (``--skip-pages`` leaves it out);
4. chapter 08's measurement of training throughput (target tokens per second of the RNN models and the
   Transformer on the same batches) on the device, the number the chapter shows for the CPU
   (``--skip-throughput`` leaves it out).

Without CUDA it runs the same on the CPU and says so. A GPU machine without network gets what is
missing as wheels: ``make gpu-wheels`` here downloads them into ``.whl/`` (see the Makefile).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import math
import re
import sys
import tempfile
import time
import types
from pathlib import Path

import torch

from autograder.checks import call_case, case_dtype, compare_case, grading_device, plain, tensors_in
from autograder.course import REPO, assignments
from autograder.expected import build_expected
from autograder.reference import load_reference

CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.S | re.M)


def deviation(got, want) -> float:
    """The largest absolute difference between two results of the same form (0 for exact types)."""
    if isinstance(want, torch.Tensor) and isinstance(got, torch.Tensor) and want.is_floating_point() \
            and got.shape == want.shape and want.numel():
        return float((got.double() - want.double()).abs().nan_to_num(0.0).max())
    if isinstance(want, float) and isinstance(got, (int, float)):
        return abs(float(got) - want) if math.isfinite(want) else 0.0
    if isinstance(want, (list, tuple)) and isinstance(got, (list, tuple)):
        return max((deviation(g, w) for g, w in zip(got, want)), default=0.0)
    if isinstance(want, dict) and isinstance(got, dict):
        return max((deviation(got.get(k), w) for k, w in want.items()), default=0.0)
    return 0.0


def check_references(assignment: str, device: torch.device, folder: Path) -> dict:
    """The reference on ``device`` against the CPU float64 expected outputs, every hidden case."""
    expected = torch.load(build_expected(assignment, folder), weights_only=True)["cases"]
    reference = load_reference(assignment)
    passed, total, worst, failures = 0, 0, 0.0, []
    for name, cases in expected.items():
        for case in cases:
            total += 1
            try:
                got = call_case(reference[name], case, device, case_dtype(case))
                if any(t.device.type not in (device.type, "meta") for t in tensors_in(got)):
                    raise AssertionError(f"{name}: the reference's result is not on {device.type}")
                got = plain(got)
                worst = max(worst, deviation(got, case["expected"]))
                compare_case(got, case, name, device, check_device=False)
                passed += 1
            except AssertionError as failure:
                failures.append(str(failure).splitlines()[0][:200])
    return {"passed": passed, "total": total, "worst": worst, "failures": failures}


def grade_small_class(assignment: str, folder: Path) -> str:
    """The reference and the blank release, graded by the real grader: 'full/blank' or why not."""
    try:
        import nbformat

        from autograder.grade import Options, grade  # imports nbgrader: absent where no wheels were carried
    except ImportError as error:
        return f"skipped ({error.name} not installed)"
    sys.path.insert(0, str(REPO / "tests"))
    from submissions import filled_release

    for student, solved in (("full", True), ("blank", False)):
        path = folder / "class" / student / f"{assignment}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(filled_release(assignment, solved=solved), path)
    results = {r.student: r for r in grade(assignment, folder / "class", folder / "work", options=Options(quiet=True))}
    full, blank = results["full"], results["blank"]
    ok = full.score == full.max_score and blank.score == 0
    return f"{full.score:g}/{full.max_score:g} and {blank.score:g}" + ("" if ok else "  <- WRONG")


def _without_the_book_toolchain() -> None:
    """Pages ``glue`` numbers into their prose with myst-nb, which a GPU machine need not have: what
    is checked there is that the code runs on the device, so a missing myst-nb becomes a no-op glue."""
    try:
        import myst_nb  # noqa: F401
    except ImportError:
        sys.modules["myst_nb"] = types.SimpleNamespace(glue=lambda *args, **kwargs: None)


def run_page(page: Path) -> tuple[float, str]:
    """Execute a book page's code cells in order (in this process, figures off); (seconds, error or "")."""
    import matplotlib
    matplotlib.use("Agg")
    _without_the_book_toolchain()
    cells = [re.sub(r"\A(?::[^\n]*\n)+", "", body) for body in CODE_CELL.findall(page.read_text())]
    namespace = {"__name__": "__main__"}
    start = time.monotonic()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            for number, source in enumerate(cells, 1):
                exec(compile(source, f"{page.name}, code cell {number}", "exec"), namespace)
    except Exception as error:  # reported in the table, not raised: the other pages still run
        return time.monotonic() - start, f"{type(error).__name__}: {str(error)[:120]}"
    finally:
        import matplotlib.pyplot as plt
        plt.close("all")
    return time.monotonic() - start, ""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-grading", action="store_true")
    parser.add_argument("--skip-pages", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args(argv)
    device = grading_device()
    print(f"CUDA: {torch.cuda.get_device_name(0)}" if device.type == "cuda" else "no CUDA: checked on CPU",
          flush=True)
    print(f"torch {torch.__version__}, TF32 matmul {torch.backends.cuda.matmul.allow_tf32}", flush=True)
    rows, ok = [], True
    with tempfile.TemporaryDirectory() as tmp:
        for assignment in assignments():
            refs = check_references(assignment, device, Path(tmp) / assignment)
            ok &= refs["passed"] == refs["total"]
            grading = "skipped" if args.skip_grading else grade_small_class(assignment, Path(tmp) / f"{assignment}-class")
            ok &= "WRONG" not in grading
            page = REPO / "book" / f"{assignment}.md"
            if args.skip_pages or not page.exists():
                seconds, error = None, ""
            else:
                seconds, error = run_page(page)
            ok &= not error
            rows.append((assignment, refs, grading, seconds, error))
            for failure in refs["failures"][:5]:
                print(f"  {assignment}: {failure}", flush=True)
    header = f"{'chapter':<22}{'device':<8}{'torch':<14}{'references within tolerance':>29}{'largest deviation':>19}" \
             f"  {'grading (reference and blank)':<32}{'page (s)':>9}"
    print("\n" + header)
    for assignment, refs, grading, seconds, error in rows:
        page = "skipped" if seconds is None else f"{seconds:.1f}" + (f"  {error}" if error else "")
        print(f"{assignment:<22}{device.type:<8}{torch.__version__:<14}{refs['passed']:>20}/{refs['total']:<8}"
              f"{refs['worst']:>19.2e}  {grading:<32}{page:>9}")
    if not args.skip_throughput:
        print_throughput(device)
    print("all checks passed" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


def print_throughput(device: torch.device) -> None:
    from coursekit.transformer import THROUGHPUT_BATCH_SIZES, measure_throughput

    # A GPU has lanes to spare even at the CPU's largest batch: one more, larger, batch size shows it.
    sizes = THROUGHPUT_BATCH_SIZES + ((256,) if device.type == "cuda" else ())
    rows = measure_throughput(batch_sizes=sizes, device=device, log=lambda row: None)
    print(f"\n{'model (chapter 08 throughput)':<30}{'device':<8}{'batch':>6}{'parameters':>12}{'tokens/s':>10}"
          f"{'vs attention-additive':>23}")
    for row in rows:
        rnn = next(r for r in rows if r["model"] == "attention-additive" and r["batch_size"] == row["batch_size"])
        print(f"{row['model']:<30}{device.type:<8}{row['batch_size']:>6}{row['parameters']:>12,}"
              f"{row['tokens_per_second']:>10,}{row['tokens_per_second'] / rnn['tokens_per_second']:>22.2f}x")


if __name__ == "__main__":
    sys.exit(main())
