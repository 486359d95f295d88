import io

from ocean.runtime.logtail import last_lines


def test_tail_returns_the_last_lines_across_blocks():
    lines = [f"line {i} " + "x" * 50 for i in range(1000)]
    handle = io.BytesIO(("\n".join(lines) + "\n").encode())
    assert last_lines(handle, 3) == lines[-3:]
    assert last_lines(handle, 0) == []
    # The handle is left at the end, ready to follow.
    assert handle.tell() == len(handle.getvalue())


def test_tail_of_a_short_file_is_the_whole_file():
    handle = io.BytesIO(b"a\nb\n")
    assert last_lines(handle, 10) == ["a", "b"]
