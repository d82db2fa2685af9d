import pytest

from kb.errors import BadInput
from kb.ids import find_arxiv_ids, parse_id

YOLO_FORMS = [
    "1506.02640", "1506.02640v5", "arXiv:1506.02640", "arxiv:1506.02640v1", "ARXIV:1506.02640V5",
    "https://arxiv.org/abs/1506.02640", "https://arxiv.org/abs/1506.02640v5", "http://arxiv.org/abs/1506.02640",
    "https://arxiv.org/pdf/1506.02640.pdf", "https://arxiv.org/pdf/1506.02640v5", "https://arxiv.org/pdf/1506.02640v2.pdf",
    "arxiv.org/abs/1506.02640", "https://export.arxiv.org/abs/1506.02640", "10.48550/arXiv.1506.02640",
    "https://doi.org/10.48550/arXiv.1506.02640", "  1506.02640  ",
]


@pytest.mark.parametrize("form", YOLO_FORMS)
def test_every_form_of_one_id_gives_one_key(form):
    assert parse_id(form).key == "1506.02640"


def test_version_is_kept_beside_the_key():
    assert parse_id("https://arxiv.org/pdf/1506.02640v5.pdf").version == 5
    assert parse_id("1506.02640").version is None


@pytest.mark.parametrize("form,key", [
    ("hep-th/9901001", "hep-th/9901001"), ("hep-th/9901001v2", "hep-th/9901001"),
    ("math.GT/0309136", "math/0309136"), ("https://arxiv.org/abs/cond-mat/0011267v1", "cond-mat/0011267"),
    ("arXiv:0704.0001", "0704.0001"), ("1409.4842", "1409.4842"),
    ("doi:10.1038/nature16961", "doi:10.1038/nature16961"), ("https://doi.org/10.1038/NATURE20101", "doi:10.1038/nature20101"),
])
def test_old_style_ids_and_dois(form, key):
    assert parse_id(form).key == key


@pytest.mark.parametrize("bad", ["1506.0264", "1506.026400", "1513.02640", "0612.12345", "1501.1234", "yolo",
                                 "https://example.com/abs/1506.02640", "", "1506.02640v", "../etc/passwd"])
def test_malformed_ids_are_refused_with_the_input_named(bad):
    with pytest.raises(BadInput) as err:
        parse_id(bad)
    assert repr(bad.strip()) in str(err.value) or repr(bad) in str(err.value)


def test_ids_are_found_in_free_text_in_order_without_duplicates():
    text = "PDF: https://arxiv.org/pdf/1506.02640.pdf, see also arXiv:1406.4729v2 and arxiv.org/abs/1506.02640v5"
    assert [p.key for p in find_arxiv_ids(text)] == ["1506.02640", "1406.4729"]
