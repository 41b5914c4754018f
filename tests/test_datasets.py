"""Datasets: read through `datasets.load_dataset` from every format, kept under their content hash, previewed,
sampled and mapped onto template variables; bad input answered with what to change."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from playground.datasets import (DatasetError, Datasets, Sample, as_reference, as_value, map_columns, select_rows)
from playground.settings import Settings
from playground.store import RunLog


@pytest.fixture
def store(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", offline=True)
    log = RunLog(settings.data_dir)
    yield Datasets(log, settings)
    log.close()


ROWS = [{"product": f"item {i}", "expected": f"Buy item {i}", "price": i * 1.5, "split": "dev" if i % 4 else "test"}
        for i in range(40)]


def write_csv(path, rows=ROWS, sep=","):
    header = list(rows[0])
    path.write_text("\n".join([sep.join(header)] + [sep.join(str(r[k]) for k in header) for r in rows]) + "\n")
    return path


def test_every_format_gives_the_same_rows_and_a_content_version(store, tmp_path):
    csv_file = write_csv(tmp_path / "rows.csv")
    tsv_file = write_csv(tmp_path / "rows.tsv", sep="\t")
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    (tmp_path / "rows.json").write_text(json.dumps(ROWS))
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "rows.parquet")
    infos = [store.add(path) for path in (csv_file, tsv_file, tmp_path / "rows.jsonl", tmp_path / "rows.json",
                                          tmp_path / "rows.parquet")]
    for info in infos:
        assert info.rows == 40 and info.column_names == ["product", "expected", "price", "split"]
        assert [c.type for c in info.columns] == ["text", "text", "number", "text"]
        assert store.table(info).to_pylist() == ROWS
    assert len({info.version for info in infos}) == 1       # the same rows, whatever the file: one version
    assert len({info.id for info in infos}) == 1
    assert (store.root / infos[0].version / "data.parquet").is_file()
    again = store.add(csv_file, name="renamed")
    assert again.id == infos[0].id
    changed = write_csv(tmp_path / "changed.csv", ROWS[:-1])
    assert store.add(changed).version != infos[0].version


def test_pasted_rows_folders_and_lookups(store, tmp_path):
    pasted = store.add_text("product\tnote\nlamp\tbright\nkettle\thot\n", name="pasted")
    assert pasted.rows == 2 and store.get("pasted").id == pasted.id
    as_rows = store.add_rows([{"product": "lamp"}, {"product": "kettle"}], name="api rows")
    assert store.get(as_rows.version).name == "api rows"
    folder = tmp_path / "hub-like" / "data"
    folder.mkdir(parents=True)
    write_csv(folder / "train.csv", ROWS[:30])
    write_csv(folder / "test.csv", ROWS[30:])
    with pytest.raises(DatasetError, match="splits .*pick one"):
        store.add(folder.parent)
    test_split = store.add(folder.parent, split="test")
    assert test_split.rows == 10 and test_split.source["kind"] == "folder"
    preview = store.preview(test_split.id, n=2)
    assert [row["product"] for row in preview.rows] == ["item 30", "item 31"]
    with pytest.raises(DatasetError, match="did you mean 'pasted'"):
        store.get("pastd")
    assert {d.name for d in store.list()} >= {"pasted", "api rows", "hub-like"}


def test_owners_keep_their_datasets_apart(store, tmp_path):
    mine = store.add(write_csv(tmp_path / "rows.csv"), owner="anon:a")
    assert store.get(mine.id, owner="anon:a").owner == "anon:a"
    with pytest.raises(DatasetError):
        store.get(mine.id, owner="anon:b")
    theirs = store.add(tmp_path / "rows.csv", owner="anon:b")
    assert theirs.id != mine.id and theirs.version == mine.version


def test_bad_files_say_what_to_change(store, tmp_path):
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("product,expected\nlamp,light\nkettle,hot,extra,more\n")
    with pytest.raises(DatasetError, match="as CSV: .*Expected 2 fields.*as many fields as the header"):
        store.add(ragged)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1" + b"\x00" * 100)
    with pytest.raises(DatasetError, match="not a Parquet file, or it is damaged"):
        store.add(broken)
    lines = tmp_path / "lines.jsonl"
    lines.write_text('{"a": 1}\n{"a": 2\n')
    with pytest.raises(DatasetError, match="as JSON"):
        store.add(lines)
    odd = tmp_path / "rows.xlsx"
    odd.write_text("x")
    with pytest.raises(DatasetError, match="cannot tell its format"):
        store.add(odd)
    with pytest.raises(DatasetError, match="no file or folder 'missing.csv'"):
        store.add("missing.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("product\n")
    with pytest.raises(DatasetError, match="no rows"):
        store.add(empty)


def test_a_dataset_id_that_cannot_be_reached_offline(store):
    with pytest.raises(DatasetError, match="cannot reach 'nobody/no-such-dataset'.*offline"):
        store.add("nobody/no-such-dataset")


def test_size_and_row_limits_refuse_before_reading(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", offline=True, max_dataset_bytes=1000, max_dataset_rows=10)
    log = RunLog(settings.data_dir)
    store = Datasets(log, settings)
    big = tmp_path / "big.csv"
    with open(big, "wb") as handle:          # sparse: 5 GB on paper, nothing on disk
        handle.truncate(5 * 2**30)
    with pytest.raises(DatasetError, match=r"big.csv is 5.00 GB; the limit is 0.0 MB .*max_dataset_bytes"):
        store.add(big)
    with pytest.raises(DatasetError, match="40 rows; the limit is 10"):
        store.add(write_csv(tmp_path / "rows.csv", [{"p": i} for i in range(40)]))
    log.close()


def test_samples_are_deterministic(store, tmp_path):
    info = store.add(write_csv(tmp_path / "rows.csv"))
    table = store.table(info)
    assert select_rows(table, Sample(first=3)) == [0, 1, 2]
    assert select_rows(table, Sample(start=5, stop=8)) == [5, 6, 7]
    picked = select_rows(table, Sample(random=5, seed=7))
    assert picked == select_rows(table, Sample(random=5, seed=7)) == sorted(picked) and len(picked) == 5
    assert picked != select_rows(table, Sample(random=5, seed=8))
    assert select_rows(table, Sample(split="test")) == [0, 4, 8, 12, 16, 20, 24, 28, 32, 36]
    assert select_rows(table, Sample(split="dev", first=2)) == [1, 2]
    assert select_rows(table, Sample(where={"product": ["item 3", "item 9"]})) == [3, 9]
    assert select_rows(table, Sample(rows=[7, 2, 7])) == [2, 7]
    dev = select_rows(table, Sample(split="dev", split_column="none", split_shares={"dev": 0.5, "test": 0.5}))
    test = select_rows(table, Sample(split="test", split_column="none", split_shares={"dev": 0.5, "test": 0.5}))
    assert sorted(dev + test) == list(range(40)) and not set(dev) & set(test) and dev and test
    no_column = store.add_rows([{"product": f"p{i}"} for i in range(30)], name="plain")
    plain = store.table(no_column)
    halves = select_rows(plain, Sample(split="dev")), select_rows(plain, Sample(split="test"))
    assert sorted(halves[0] + halves[1]) == list(range(30))


def test_bad_samples_say_what_to_change(store, tmp_path):
    table = store.table(store.add(write_csv(tmp_path / "rows.csv")))
    with pytest.raises(DatasetError, match="no rows in split 'train'; its column 'split' holds: dev, test"):
        select_rows(table, Sample(split="train"))
    with pytest.raises(DatasetError, match="no column 'prodct'; did you mean 'product'"):
        select_rows(table, Sample(where={"prodct": "x"}))
    with pytest.raises(DatasetError, match="the sample of .* is empty .*product=nothing"):
        select_rows(table, Sample(where={"product": "nothing"}))
    with pytest.raises(DatasetError, match="row 99 is not in"):
        select_rows(table, Sample(rows=[99]))
    with pytest.raises(ValueError, match="add up to 1"):
        Sample(split="dev", split_shares={"dev": 0.5, "test": 0.2})


def test_columns_map_to_variables(store, tmp_path):
    columns = {"product": "text", "expected": "text", "photo": "image", "name": "text"}
    assert map_columns(["product", "tone"], columns) == {"product": "product"}
    assert map_columns(["product"], columns, {"product": "name"}) == {"product": "name"}
    with pytest.raises(DatasetError, match="has no variable 'prodct'; did you mean 'product'"):
        map_columns(["product"], columns, {"prodct": "name"})
    with pytest.raises(DatasetError, match="no column 'nmae'; did you mean 'name'"):
        map_columns(["product"], columns, {"product": "nmae"})
    with pytest.raises(DatasetError, match="'photo' holds image data"):
        map_columns(["product"], columns, {"product": "photo"})
    with pytest.raises(DatasetError, match="--expected: .*no column 'expcted'; did you mean 'expected'"):
        map_columns(["product"], columns, expected="expcted")
    with pytest.raises(DatasetError, match="no column of the dataset is named like a variable .*--map"):
        map_columns(["topic"], columns)
    assert [as_value(v) for v in (None, "x", 3, 2.0, 2.5, True, [1, "a"])] == \
        ["", "x", "3", "2", "2.5", "true", '[1, "a"]']
    assert as_reference(None) is None and as_reference({"bytes": b"png"}) is None and as_reference(4) == "4"


def test_the_same_file_is_found_by_its_bytes_without_reading_it_again(store, tmp_path, monkeypatch):
    csv_file = write_csv(tmp_path / "rows.csv")
    first = store.add(csv_file)

    def never(*args, **kwargs):
        raise AssertionError("read again")

    monkeypatch.setattr("playground.datasets.store.loaded", never)
    assert store.add(csv_file).id == first.id
    write_csv(csv_file, ROWS[:5])
    with pytest.raises(AssertionError, match="read again"):
        store.add(csv_file)
