"""A user's CSV / TSV / JSONL files: column mapping, string or integer labels, inferred label names."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from adaptermix.data import DataConfig, load_task
from adaptermix.errors import DataError


def _write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def _files_cfg(tmp_path: Path, contents: dict[str, str], suffix: str = ".csv", **kw: object) -> DataConfig:
    files = {split: _write(tmp_path / f"{split}{suffix}", text) for split, text in contents.items()}
    return DataConfig(source="files", name="mine", files=files, **kw)


def _data_error(cfg: DataConfig, splits: tuple[str, ...] = ("train", "test")) -> str:
    with pytest.raises(DataError) as info:
        load_task(cfg, splits)
    message = str(info.value)
    assert "\n" not in message
    return message


CSV_TRAIN = 'review,sentiment\ngreat film,pos\n"slow, dull",neg\nloved it,pos\nmeh,neg\nfine,pos\n'
CSV_TEST = "review,sentiment\nawful,neg\nsuperb,pos\n"


def test_csv_with_string_labels_and_inferred_names(tmp_path: Path) -> None:
    cfg = _files_cfg(
        tmp_path,
        {"train": CSV_TRAIN, "test": CSV_TEST},
        columns={"text": "review", "label": "sentiment"},
    )
    data = load_task(cfg, ("train", "test"))
    assert data.info.label_names == ("neg", "pos")  # sorted distinct train labels
    assert data.info.task == "single" and data.info.problem == "classification"
    assert data.info.metric == "accuracy"
    train = data.split("train")
    assert [(e.text, e.label) for e in train[:2]] == [("great film", 1), ("slow, dull", 0)]
    assert [e.label for e in data.split("test")] == [0, 1]


def test_given_label_names_fix_the_order_and_accept_indices(tmp_path: Path) -> None:
    train = "text,label\na,pos\nb,neg\nc,1\nd,0\n"
    cfg = _files_cfg(tmp_path, {"train": train}, label_names=["pos", "neg"])
    rows = load_task(cfg, ("train",)).split("train")
    assert [e.label for e in rows] == [0, 1, 1, 0]


def test_unknown_label_lists_the_known_ones(tmp_path: Path) -> None:
    cfg = _files_cfg(tmp_path, {"train": CSV_TRAIN, "test": "review,sentiment\nodd,foo\n"},
                     columns={"text": "review", "label": "sentiment"})  # fmt: skip
    assert _data_error(cfg) == f"{tmp_path / 'test.csv'}:2: unknown label 'foo' (known: neg, pos)"
    given = _files_cfg(tmp_path, {"train": "text,label\nx,b\n"}, label_names=["a", "c"])
    assert _data_error(given, ("train",)) == f"{tmp_path / 'train.csv'}:2: unknown label 'b' (known: a, c)"
    out_of_range = _files_cfg(tmp_path, {"train": "text,label\nx,5\n"}, label_names=["a", "b"])
    assert _data_error(out_of_range, ("train",)) == f"{tmp_path / 'train.csv'}:2: label 5 not in 0..1"


def test_integer_labels_are_sorted_numerically(tmp_path: Path) -> None:
    train = "text,label\n" + "".join(f"t{i},{lab}\n" for i, lab in enumerate([10, 2, 1, 2, 10]))
    data = load_task(_files_cfg(tmp_path, {"train": train}), ("train",))
    assert data.info.label_names == ("1", "2", "10")
    assert [e.label for e in data.split("train")] == [2, 1, 0, 1, 2]


def test_tsv_pair_task_keeps_quotes(tmp_path: Path) -> None:
    train = 's1\ts2\tscore\nhe said "hi\tshe said hi\t4.5\nx\ty\t0\n'
    cfg = _files_cfg(
        tmp_path,
        {"train": train},
        suffix=".tsv",
        columns={"text": "s1", "text_pair": "s2", "label": "score"},
        problem="regression",
    )
    data = load_task(cfg, ("train",))
    assert data.info.task == "pair" and data.info.problem == "regression" and data.info.metric == "pearson"
    assert data.split("train")[0].text == 'he said "hi' and data.split("train")[0].label == 4.5
    assert [type(e.label) for e in data.split("train")] == [float, float]


def test_jsonl_with_int_and_string_labels(tmp_path: Path) -> None:
    train = '{"q": "a", "y": "no"}\n{"q": "b", "y": 1}\n\n{"q": "c", "y": "yes"}\n'
    cfg = _files_cfg(tmp_path, {"train": train}, suffix=".jsonl", columns={"text": "q", "label": "y"},
                     label_names=["no", "yes"])  # fmt: skip
    assert [e.label for e in load_task(cfg, ("train",)).split("train")] == [0, 1, 1]


def test_format_can_be_forced(tmp_path: Path) -> None:
    path = _write(tmp_path / "train.txt", "text\tlabel\nhello\tx\n")
    cfg = DataConfig(source="files", name="m", files={"train": path}, format="tsv")
    assert load_task(cfg, ("train",)).split("train")[0].text == "hello"


def test_caps_apply_to_files(tmp_path: Path) -> None:
    train = "text,label\n" + "".join(f"t{i},{'a' if i % 4 else 'b'}\n" for i in range(40))
    rows = load_task(_files_cfg(tmp_path, {"train": train}, max_train=8), ("train",)).split("train")
    assert Counter(e.label for e in rows) == {0: 6, 1: 2}  # 30 a : 10 b


# ---------------------------------------------------------------------------------------------------
# Bad input


def test_missing_column(tmp_path: Path) -> None:
    cfg = _files_cfg(tmp_path, {"train": "body,label\nx,a\n"})
    assert (
        _data_error(cfg, ("train",))
        == f"{tmp_path / 'train.csv'}: missing column 'text' (columns: body, label)"
    )


def test_missing_field_in_jsonl(tmp_path: Path) -> None:
    cfg = _files_cfg(tmp_path, {"train": '{"text": "a", "label": "x"}\n{"text": "b"}\n'}, suffix=".jsonl")
    assert _data_error(cfg, ("train",)) == f"{tmp_path / 'train.jsonl'}:2: missing field 'label'"


def test_missing_split_and_missing_file(tmp_path: Path) -> None:
    cfg = _files_cfg(tmp_path, {"train": CSV_TRAIN})
    assert _data_error(cfg) == "dataset 'mine' has no 'test' split (data.files has: train)"
    gone = str(tmp_path / "gone.csv")
    cfg = DataConfig(source="files", name="mine", files={"train": gone})
    assert _data_error(cfg, ("train",)) == f"{gone}: file not found ({gone})"


def test_empty_split(tmp_path: Path) -> None:
    cfg = _files_cfg(tmp_path, {"train": CSV_TRAIN, "test": "review,sentiment\n"},
                     columns={"text": "review", "label": "sentiment"})  # fmt: skip
    assert _data_error(cfg) == f"{tmp_path / 'test.csv'}: no rows (empty split)"


def test_empty_cell_is_a_missing_label(tmp_path: Path) -> None:
    cfg = _files_cfg(tmp_path, {"train": "text,label\na,x\nb,\n"})
    assert _data_error(cfg, ("train",)) == f"{tmp_path / 'train.csv'}:3: missing label"


def test_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_bytes(b"text,label\nok,a\ncaf\xe9,b\n")
    cfg = DataConfig(source="files", name="m", files={"train": str(path)})
    assert _data_error(cfg, ("train",)) == f"{path}:3: not valid UTF-8 (byte 0xe9)"


def test_bad_regression_label(tmp_path: Path) -> None:
    cfg = _files_cfg(tmp_path, {"train": "text,label\na,1.5\nb,high\n"}, problem="regression")
    assert _data_error(cfg, ("train",)) == f"{tmp_path / 'train.csv'}:3: label 'high' is not a number"


def test_unknown_extension(tmp_path: Path) -> None:
    path = _write(tmp_path / "train.data", "text,label\na,b\n")
    cfg = DataConfig(source="files", name="m", files={"train": path})
    expected = f"{path}: cannot tell the format from the extension (.csv, .jsonl, .ndjson, .tab, .tsv); set data.format"
    assert _data_error(cfg, ("train",)) == expected


def test_label_names_needed_without_a_train_file(tmp_path: Path) -> None:
    cfg = _files_cfg(tmp_path, {"test": CSV_TEST}, columns={"text": "review", "label": "sentiment"})
    expected = "data.label_names is required when data.files has no 'train' file to infer them from"
    assert _data_error(cfg, ("test",)) == expected
