from hypothesis import given, strategies as st
import pytest

from newswire.keys import canonical_url, url_key


def test_tracking_parameters_removed_and_order_normalised():
    a = canonical_url("HTTPS://Example.com:443/news/a?b=2&utm_source=rss&a=1&fbclid=x&gclid=y#top")
    assert a == "https://example.com/news/a?a=1&b=2"


def test_same_story_same_key_different_story_different_key():
    assert url_key("https://ex.com/a?utm_medium=rss") == url_key("https://EX.com/a")
    assert url_key("https://ex.com/a?id=1") != url_key("https://ex.com/a?id=2")
    assert len(url_key("https://ex.com/a")) == 16


@pytest.mark.parametrize("bad", ["", "not a url", "/relative/path", "http://host:notaport/"])
def test_unusable_urls_raise_value_error(bad):
    with pytest.raises(ValueError):
        canonical_url(bad)


@given(st.text())
def test_canonical_url_never_crashes_on_junk(junk):
    try:
        canonical_url(junk)
    except ValueError:
        pass
