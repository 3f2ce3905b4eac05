"""Where a test cell failed, told from IPython's traceback without revealing the hidden tests."""
from autograder.outputs import WIDTH, error_output
from autograder.verdict import failing_line

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
