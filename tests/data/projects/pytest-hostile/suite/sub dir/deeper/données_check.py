def test_unicode_file():
    pass
