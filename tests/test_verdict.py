"""Judging a sandboxed run: where a test cell failed, told from IPython's traceback without revealing
the hidden tests; and records the sandbox left, which are trusted for nothing but plain data."""
import os

import pytest
import torch

from autograder.checks import record_path
from autograder.outputs import WIDTH, error_output
from autograder.verdict import failing_line, judge_name

SOURCE = """pe = sinusoidal_positional_encoding(50, 8)
assert pe.shape == (50, 8)
# Position 0: sin(0) = 0 in even columns,
# cos(0) = 1 in odd columns.
torch.testing.assert_close(pe[0], expected)
print("visible tests passed")
### BEGIN HIDDEN TESTS
check_against_reference("07_self_attention", "pe", sinusoidal_positional_encoding)
### END HIDDEN TESTS"""


def ipython_error(line: int) -> dict:
    """An error output as IPython 8 writes it, colours included."""
    return {"output_type": "error", "ename": "AssertionError", "evalue": "not close",
            "traceback": ["\x1b[0;31m-----\x1b[0m", f"Cell \x1b[0;32mIn[9], line {line}\x1b[0m\n----> {line} ...",
                          "File torch/testing/_comparison.py:1631, in assert_close(...)", "AssertionError: not close"]}


def test_a_visible_failure_names_its_line_and_the_comments_above_it():
    assert failing_line(ipython_error(5), SOURCE) == (
        "raised at line 5 of the test cell:\n"
        "    # Position 0: sin(0) = 0 in even columns,\n"
        "    # cos(0) = 1 in odd columns.\n"
        "    torch.testing.assert_close(pe[0], expected)")
    assert failing_line(ipython_error(2), SOURCE) == "raised at line 2 of the test cell:\n    assert pe.shape == (50, 8)"


def test_a_hidden_failure_reveals_nothing():
    assert failing_line(ipython_error(8), SOURCE) == "raised in a hidden test"


def test_a_failure_blamed_on_a_finally_block_says_nothing():
    source = "try:\n    assert f(1) == 2\nfinally:\n    f = original\n"  # Python reports line 4
    assert failing_line(ipython_error(4), source) == ""
    assert failing_line(ipython_error(2), source) == "raised at line 2 of the test cell:\n    assert f(1) == 2"


def test_a_traceback_without_a_cell_frame_says_nothing():
    assert failing_line({"traceback": ["TimeoutError: the cell ran longer than 20 s"]}, SOURCE) == ""
    assert failing_line(ipython_error(99), SOURCE) == ""


def test_messages_are_wrapped_but_keep_their_lines():
    message = "first line\n" + "word " * 60
    lines = error_output("AssertionError", message)["traceback"][0].splitlines()
    assert lines[0] == "AssertionError: first line"
    assert len(lines) > 3 and all(len(line) <= WIDTH for line in lines)


# --------------------------------------------------------------------------- records the sandbox left

CASES = [{"id": "one", "expected": torch.ones(4, dtype=torch.float64)},
         {"id": "two", "expected": torch.zeros(3, dtype=torch.float64)}]


def write_record(folder, outputs, name="f"):
    path = record_path(folder, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"name": name, "outputs": outputs}, path)
    return path


def test_the_tolerance_comes_from_the_grader_not_the_record(tmp_path):
    """A float16-precise answer fails on a CPU grader however the record names its device."""
    close_at_cuda_tolerance = [{"value": torch.ones(4) + 1e-3, "device": device} for device in ("cuda", "cuda")]
    close_at_cuda_tolerance[1]["value"] = torch.zeros(3)
    write_record(tmp_path, close_at_cuda_tolerance)
    message = judge_name("f", tmp_path, CASES, torch.device("cpu"))
    assert message and "differ" in message
    assert judge_name("f", tmp_path, CASES, torch.device("cuda")) is None, "on CUDA the looser tolerance holds"
    write_record(tmp_path, [{"value": torch.ones(4), "device": "no-such-device"}, {"value": torch.zeros(3)}])
    assert judge_name("f", tmp_path, CASES, torch.device("cpu")) is None


@pytest.mark.parametrize("outputs", [[1, "two", None], "not a list", [{"no value": 1}], [{"value": object}]])
def test_a_malformed_record_fails_its_cell_and_nothing_else(tmp_path, outputs):
    path = record_path(tmp_path, "f")
    path.parent.mkdir(parents=True)
    if outputs == [{"value": object}]:
        path.write_bytes(b"not a torch file")
    else:
        torch.save({"outputs": outputs}, path)
    message = judge_name("f", tmp_path, CASES, torch.device("cpu"))
    assert message and message.startswith("f: ")


def test_a_record_behind_a_link_or_a_fifo_is_not_read(tmp_path):
    """Records replaced by a link to a classmate's records (or a FIFO) are refused, never followed."""
    classmate = tmp_path / "classmate"
    write_record(classmate, [{"value": torch.ones(4)}, {"value": torch.zeros(3)}])
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "records").symlink_to(classmate / "records", target_is_directory=True)
    assert judge_name("f", classmate, CASES, torch.device("cpu")) is None
    assert "not a plain file" in judge_name("f", mine, CASES, torch.device("cpu"))
    (mine / "records").unlink()
    (mine / "records").mkdir()
    os.mkfifo(record_path(mine, "f"))
    assert "not a plain file" in judge_name("f", mine, CASES, torch.device("cpu"))
