"""What PATH may name, read without running it; usage errors exit 2 with one line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from normgrad._internal.errors import UsageError
from normgrad.cli import main
from normgrad.tools.grade import sample, targets


def _course(root: Path) -> Path:
    pkg = root / "cs231n"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "layers.py").write_text(sample.render())
    (pkg / "fast_layers.py").write_text(sample.FAST_LAYERS)
    (pkg / "setup.py").write_text("raise SystemExit('setup.py must never be imported')\n")
    return pkg


def test_a_course_folder_is_its_layers_and_fast_layers_in_their_package(tmp_path: Path) -> None:
    pkg = _course(tmp_path)
    for where in (pkg, tmp_path):  # the cs231n folder, or the assignment folder above it
        t = targets.resolve(str(where))
        assert [n for n, _ in t.modules] == ["cs231n.layers", "cs231n.fast_layers"]
        assert t.sys_path == [str(tmp_path.resolve())] and t.select is None


def test_a_file_and_a_selected_function(tmp_path: Path) -> None:
    pkg = _course(tmp_path)
    t = targets.resolve(f"{pkg / 'layers.py'}:batchnorm_backward_alt")
    assert t.select == "batchnorm_backward_alt" and t.modules[0][0] == "cs231n.layers"
    lone = tmp_path / "random.py"  # a stdlib name: imported under another, never shadowing
    lone.write_text(sample.render(only=("relu_forward", "relu_backward")))
    assert targets.resolve(str(lone)).modules[0][0] == "graded_random"


def test_a_dotted_module_is_found_without_importing_it(tmp_path: Path, monkeypatch) -> None:
    _course(tmp_path)
    monkeypatch.chdir(tmp_path)
    t = targets.resolve("cs231n.layers:affine_backward")
    assert t.modules[0][1] == (tmp_path / "cs231n" / "layers.py").resolve()
    assert targets.resolve("normgrad.layers").modules  # re-exports count (import lines)


USAGE = [
    ("no/such/file.py", "no such file"),
    ("nosuchmodule_xyz", "no such file, folder or module"),
    ("{tmp}/notes.txt", "not a Python file"),
    ("{tmp}/empty", "holds no .py file"),
    ("{tmp}/other.py", "nothing gradable"),
    ("{tmp}/cs231n/layers.py:not_a_course_function", "not a course function"),
    ("{tmp}/other.py:batchnorm_forward", "does not define batchnorm_forward"),
]


@pytest.mark.parametrize("path,needle", USAGE)
def test_usage_errors_exit_2_with_one_line(
    path: str, needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _course(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    (tmp_path / "other.py").write_text("def helper(x):\n    return x\n")
    arg = path.format(tmp=tmp_path)
    with pytest.raises(UsageError, match=needle):
        targets.resolve(arg)
    assert main(["grade", arg]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("normgrad grade: error:") and needle in err[0]


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["grade"], "the following arguments are required: path"),
        (["grade", "x.py", "--tol", "0"], "--tol"),
        (["grade", "x.py", "--timeout", "0.5"], "--timeout"),
        (["grade", "x.py", "--seed", "-1"], "--seed"),
    ],
)
def test_bad_flags_exit_2(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and needle in capsys.readouterr().err


def test_nothing_is_executed_while_resolving(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    f = tmp_path / "layers.py"
    f.write_text(f"open({str(marker)!r}, 'w').write('x')\n" + sample.render())
    targets.resolve(str(f))
    assert not marker.exists()


def test_a_syntax_error_is_a_failed_grade_not_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "layers.py"
    f.write_text("def batchnorm_forward(x, gamma, beta, bn_param)\n    return x\n")
    t = targets.resolve(str(f))
    assert t.syntax_errors and not t.modules
    assert main(["grade", str(f)]) == 1
    assert "layers.py, line 1" in capsys.readouterr().out
    assert os.path.exists(f)
