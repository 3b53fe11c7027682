"""The README's Python examples run, and print exactly the output the README documents."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"```python\n(.*?)```(?:\s*\n\s*Output:\s*\n\s*```text\n(.*?)```)?", re.S)
BLOCKS = BLOCK.findall(README.read_text()) if README.exists() else []


@pytest.mark.skipif(not BLOCKS, reason="README.md not found next to the tests")
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs_and_prints_what_it_documents(index, tmp_path):
    code, documented = BLOCKS[index]
    script = tmp_path / "example.py"
    script.write_text(code)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    if documented:
        assert result.stdout == documented
